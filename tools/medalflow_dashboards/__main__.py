"""``python -m medalflow_dashboards build|publish`` (``make dashboards``).

build: the dashboards' JSON into a folder (to review or import by hand).
publish: into Grafana at --url (GRAFANA_URL) with the token in the environment variable GRAFANA_TOKEN.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from medalflow_dashboards.dashboards import build_all
from medalflow_dashboards.publish import Grafana, PublishError, publish


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="medalflow_dashboards", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="write the dashboards' JSON to a folder")
    build.add_argument("--out", type=Path, default=Path(".local/dashboards"))
    push = commands.add_parser("publish", help="publish to Grafana (token from GRAFANA_TOKEN)")
    push.add_argument("--url", default=os.environ.get("GRAFANA_URL", ""))
    push.add_argument("--folder-uid", default="medalflow")
    push.add_argument("--folder-title", default="medalflow")
    push.add_argument("--message", default="published by make dashboards")
    arguments = parser.parse_args(argv)

    dashboards = build_all()
    if arguments.command == "build":
        arguments.out.mkdir(parents=True, exist_ok=True)
        for name, model in dashboards.items():
            (arguments.out / f"{name}.json").write_text(json.dumps(model, indent=2) + "\n")
        print(f"{len(dashboards)} dashboards in {arguments.out}")
        return 0
    if not arguments.url:
        print(
            "GRAFANA_URL is not set: make dashboards GRAFANA_URL=https://<workspace> (token in GRAFANA_TOKEN)",
            file=sys.stderr,
        )
        return 2
    try:
        grafana = Grafana(arguments.url, os.environ.get("GRAFANA_TOKEN", ""))
        urls = publish(grafana, dashboards, arguments.folder_uid, arguments.folder_title, arguments.message)
    except PublishError as error:
        print(f"dashboards not published: {error}", file=sys.stderr)
        return 1
    for url in urls:
        print(url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
