"""Airflow UI plugin: **Pipeline health**, the medalflow page (issue 14), served by the api-server at ``/medalflow/``.

Run history and success rate, the slowest models and their trend, failing tests, freshness per source, quarantined
records, cost per run and per model on Athena, and the gold at a glance, from the tables the builds publish as
Parquet under ``<lake>/_published/`` (the figures: dags/medalflow/observability_page.py). Charts are drawn in the
browser by Chart.js, served from this plugin's own folder (medalflow_observability_assets/; no CDN, so the page works
offline and behind MWAA's private web access). Signed-in users only, as the dbt docs page (medalflow.plugin_web).

Routes, under ``/medalflow``: ``/`` the page, ``/api/page-data`` its figures as JSON, ``/static/<file>`` its assets;
each takes ``?days=`` (the window, 30 by default).
"""

# No `from __future__ import annotations`: FastAPI reads the route signatures, whose types are imported lazily.
import functools
import json
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from airflow.plugins_manager import AirflowPlugin

URL_PREFIX = "/medalflow"
ASSETS = Path(__file__).resolve().parent / "medalflow_observability_assets"
# The only files served from ASSETS (the template and the notes stay private), with their media types.
STATIC_FILES = {
    "chart.umd.min.js": "text/javascript",
    "page.js": "text/javascript",
    "page.css": "text/css",
    "icon.svg": "image/svg+xml",
}
TEMPLATE = "page.html.j2"
WINDOWS = (7, 30, 90)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def to_json(data: Any) -> str:
    return json.dumps(data, default=_json_default, separators=(",", ":"))


def script_json(data: Any) -> str:
    """JSON safe inside a <script type="application/json"> element: no '<' can close it, whatever the data says."""
    return to_json(data).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def format_bytes(value: float | None) -> str:
    if value is None:
        return "—"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(value) < 1024 or unit == "TB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def format_usd(value: float | None) -> str:
    return "—" if value is None else f"${value:,.4f}" if value < 1 else f"${value:,.2f}"


def format_percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def format_trend(ratio: float | None) -> str:
    return "—" if ratio is None else f"{ratio:+.0%}"


def format_moment(value: datetime | None) -> str:
    return "—" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


@functools.cache
def _templates() -> Any:
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(ASSETS), autoescape=True, undefined=jinja2.StrictUndefined
    )
    environment.filters.update(
        duration=format_duration,
        bytes=format_bytes,
        usd=format_usd,
        percent=format_percent,
        trend=format_trend,
        moment=format_moment,
    )
    return environment


def render_page(data: dict[str, Any], days: int) -> str:
    from markupsafe import Markup

    charts = {
        key: data[key] for key in ("daily", "model_trend", "gold", "cost_available", "costliest_models", "window")
    }
    return (
        _templates()
        .get_template(TEMPLATE)
        .render(
            data=data,
            charts_json=Markup(script_json(charts)),
            days=days,
            windows=WINDOWS,
            prefix=URL_PREFIX,
        )
    )


def create_app() -> Any:
    from fastapi import Depends, FastAPI, Query
    from fastapi.responses import FileResponse, HTMLResponse, Response

    from medalflow import observability_page
    from medalflow.plugin_web import message_page, not_published_page, signed_in

    app = FastAPI(title="medalflow pipeline health", dependencies=[Depends(signed_in)])
    days_query = Query(observability_page.DEFAULT_DAYS, ge=1, le=observability_page.MAX_DAYS)
    # Figures change with every published build: let the browser keep them for a minute at most.
    short_cache = {"Cache-Control": "private, max-age=60"}

    def figures(days: int) -> tuple[dict[str, Any] | None, int, str, str]:
        """The page's figures, or the status, page and message saying why there are none."""
        location = observability_page.published_uri()
        try:
            return observability_page.page_data(location, days), 200, "", ""
        except observability_page.NotPublishedError as error:
            when = "every hour, after building them; trigger it once (`make demo` runs it too)"
            page = not_published_page("The pipeline's tables are", observability_page.PUBLISHING_DAG, location, when)
            return None, 404, page, str(error)
        except observability_page.PublicationError as error:
            return None, 502, message_page("The published pipeline tables cannot be read", str(error)), str(error)

    @app.get("/", response_class=HTMLResponse)
    def page(days: int = days_query) -> HTMLResponse:
        data, status, problem_page, _ = figures(days)
        if data is None:
            return HTMLResponse(problem_page, status_code=status)
        return HTMLResponse(render_page(data, days), headers=short_cache)

    @app.get("/api/page-data")
    def page_data(days: int = days_query) -> Response:
        data, status, _, problem = figures(days)
        if data is None:
            return Response(to_json({"detail": problem}), status_code=status, media_type="application/json")
        return Response(to_json(data), media_type="application/json", headers=short_cache)

    @app.get("/static/{name}")
    def static(name: str) -> Response:
        if name not in STATIC_FILES:
            return Response(status_code=404)
        # The assets change only with a deployment: a day in the browser's cache.
        return FileResponse(
            ASSETS / name, media_type=STATIC_FILES[name], headers={"Cache-Control": "private, max-age=86400"}
        )

    return app


class MedalflowObservabilityPlugin(AirflowPlugin):
    """The FastAPI app (and FastAPI, Jinja and pyarrow with it) is built only when the api-server asks for it."""

    name = "medalflow_observability"
    external_views: ClassVar[list[dict[str, Any]]] = [
        {
            "name": "Pipeline health",
            "href": f"{URL_PREFIX}/",
            "url_route": "medalflow",
            "icon": f"{URL_PREFIX}/static/icon.svg",
            "destination": "nav",
            "nav_top_level": True,
        }
    ]

    @functools.cached_property
    def fastapi_apps(self) -> list[dict[str, Any]]:  # type: ignore[override]
        return [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "medalflow pipeline health"}]
