"""`make ui`: Airflow's UI over what `make demo` ran, on http://127.0.0.1:8080.

`make demo` runs its DAGs in one process (``dag.test()``) and keeps no server running. This starts Airflow's
api-server over the demo's own metadata database and lake, so the runs appear under **Dags** and the **Pipeline
health** page (plugins/medalflow_observability.py) shows them, with the gold charts. Bound to 127.0.0.1 and meant for
a laptop: every visitor is the admin (Airflow's simple auth manager, ``all_admins``), so there is no password to find.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

# Written by `make demo` next to its lake and warehouse: the settings its Airflow ran with (no secret: the demo's
# databases use trust authentication).
ENVIRONMENT_FILE = "environment.json"


class DemoNotRunError(RuntimeError):
    pass


def remember_environment(demo_dir: Path, environment: Mapping[str, str]) -> Path:
    path = demo_dir / ENVIRONMENT_FILE
    path.write_text(json.dumps(dict(environment), indent=2) + "\n")
    return path


def ui_environment(demo_dir: Path) -> dict[str, str]:
    """The variables the api-server needs to show the demo: its database, lake and warehouse, and no login."""
    path = demo_dir / ENVIRONMENT_FILE
    if not path.is_file():
        raise DemoNotRunError(f"No demo to show: {path} is missing. Run `make demo` first, then `make ui`.")
    return {
        **json.loads(path.read_text()),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
    }


def api_server_command(port: int) -> list[str]:
    airflow = Path(sys.executable).with_name("airflow")
    return [str(airflow), "api-server", "--host", "127.0.0.1", "--port", str(port)]


def serve_ui(demo_dir: Path, port: int = 8080) -> int:
    try:
        environment = ui_environment(demo_dir)
    except DemoNotRunError as error:
        print(f"medalflow ui: {error}", file=sys.stderr)
        return 2
    print(f"Airflow's UI over the demo: http://127.0.0.1:{port}/  (Pipeline health: /plugin/medalflow); Ctrl-C stops")
    try:
        return subprocess.run(api_server_command(port), env={**os.environ, **environment}, check=False).returncode
    except KeyboardInterrupt:
        return 0
