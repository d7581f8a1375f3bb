"""What the project's Airflow UI plugins share (plugins/medalflow_dbt_docs.py, plugins/medalflow_observability.py).

Their FastAPI apps are mounted by the api-server; each page is for signed-in users only, checked the way the UI checks
its own requests, and says which DAG to run when what it shows is not published yet. Airflow's FastAPI modules are
imported when a request is checked; this module itself only inside a plugin's ``create_app`` (every Airflow process
loads plugins, only the api-server builds their apps).
"""

# No `from __future__ import annotations`: FastAPI reads signed_in's signature to pass it the request.
import html

from fastapi import Request

MESSAGE_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{title}</title></head>
<body style="font-family: sans-serif; margin: 2rem">
<h2>{title}</h2>
<p>{message}</p>
</body></html>"""


async def signed_in(request: Request) -> None:
    """The UI's own check: a valid JWT in the ``Authorization`` header or the UI's cookie, else 401/403.

    A FastAPI dependency (``FastAPI(dependencies=[Depends(signed_in)])``) of every route of a plugin's app.
    """
    from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
    from airflow.api_fastapi.core_api.security import resolve_user_from_token

    header = request.headers.get("authorization", "")
    token = header[7:] if header.lower().startswith("bearer ") else request.cookies.get(COOKIE_NAME_JWT_TOKEN)
    await resolve_user_from_token(token)


def message_page(title: str, message: str) -> str:
    """A page saying one thing (both texts are escaped: they may carry paths and data)."""
    return MESSAGE_PAGE.format(title=html.escape(title), message=html.escape(message))


def not_published_page(what: str, dag_id: str, location: str, when: str = "trigger it once") -> str:
    """The page a plugin shows instead of ``what`` before the ``dag_id`` DAG has published it to ``location``."""
    return message_page(f"{what} not published yet", f"The {dag_id} DAG publishes them to {location}: {when}.")
