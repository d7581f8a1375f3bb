"""Airflow UI plugin: the medallion's dbt docs under **Browse -> dbt docs**, served by the api-server.

The maintenance DAG publishes the docs site (``dbt docs generate``) to the lake, ``<lake>/_docs/dbt/`` or
``MEDALFLOW_DBT_DOCS_URI`` (S3 on AWS); this plugin serves those three files from there under ``/dbt-docs/`` to
signed-in users only (the same JWT cookie as the UI), and adds the page to the UI's navigation as an external view,
which the UI shows in a frame.
"""

# No `from __future__ import annotations`: FastAPI reads the route signatures, whose types are imported lazily.
import functools
from typing import Any, ClassVar

from airflow.plugins_manager import AirflowPlugin

URL_PREFIX = "/dbt-docs"
MEDIA_TYPES = {"index.html": "text/html", "manifest.json": "application/json", "catalog.json": "application/json"}


def create_app() -> Any:
    from fastapi import Depends, FastAPI
    from fastapi.responses import HTMLResponse, RedirectResponse, Response

    from medalflow.artifacts import docs_uri, read_docs_file
    from medalflow.plugin_web import not_published_page, signed_in

    app = FastAPI(title="medalflow dbt docs", dependencies=[Depends(signed_in)])

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse(f"{URL_PREFIX}/index.html")

    @app.get("/{name}")
    def docs_file(name: str) -> Response:
        if name not in MEDIA_TYPES:
            return Response(status_code=404)
        try:
            content = read_docs_file(name)
        except FileNotFoundError:
            if name == "index.html":
                page = not_published_page(
                    "dbt docs are", "maintenance", docs_uri(), "it generates them; trigger it once"
                )
                return HTMLResponse(page, status_code=404)
            return Response(status_code=404)
        # Docs change once a day at most; a short cache keeps the page fast without serving yesterday's for long.
        return Response(content, media_type=MEDIA_TYPES[name], headers={"Cache-Control": "private, max-age=300"})

    return app


class MedalflowDbtDocsPlugin(AirflowPlugin):
    """Every Airflow process loads plugins (workers and the scheduler too): the FastAPI app, and FastAPI with it, is
    built only when the api-server asks for it."""

    name = "medalflow_dbt_docs"
    external_views: ClassVar[list[dict[str, Any]]] = [
        {
            "name": "dbt docs",
            "href": f"{URL_PREFIX}/index.html",
            "url_route": "dbt-docs",
            "category": "browse",
            "destination": "nav",
        }
    ]

    @functools.cached_property
    def fastapi_apps(self) -> list[dict[str, Any]]:  # type: ignore[override]
        return [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "medalflow dbt docs"}]
