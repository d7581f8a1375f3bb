"""Publishing the dashboards through Grafana's HTTP API (Amazon Managed Grafana speaks the same API).

One folder (created when missing), every dashboard saved into it with ``overwrite``: publishing twice changes nothing
but the dashboards' versions. The token is a Grafana service account token (Managed Grafana: a workspace service
account with the Editor role) sent as a Bearer header; it never appears in an error, a log line or an exception.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import requests

TIMEOUT_SECONDS = 30


class PublishError(RuntimeError):
    """A clear, token-free reason why publishing stopped."""


@dataclasses.dataclass(frozen=True)
class Grafana:
    url: str
    token: dataclasses.InitVar[str]
    session: requests.Session = dataclasses.field(default_factory=requests.Session, repr=False)

    def __post_init__(self, token: str) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise PublishError(
                f"GRAFANA_URL {self.url!r} is not an http(s) URL (e.g. https://g-abc.grafana-workspace.eu-west-1.amazonaws.com)"
            )
        if not token:
            raise PublishError("GRAFANA_TOKEN is empty: set it to a Grafana service account token with the Editor role")
        object.__setattr__(self, "url", self.url.rstrip("/"))
        self.session.headers.update(
            {"Authorization": f"Bearer {token}", "Accept": "application/json", "Content-Type": "application/json"}
        )

    def call(self, method: str, path: str, body: dict[str, Any] | None = None, *, missing_ok: bool = False) -> Any:
        where = f"{self.url}{path}"
        try:
            response = self.session.request(method, where, json=body, timeout=TIMEOUT_SECONDS)
        except requests.ConnectionError as error:
            raise PublishError(
                f"cannot reach Grafana at {self.url} ({type(error).__name__}): check GRAFANA_URL and the network"
            ) from None
        except requests.Timeout:
            raise PublishError(
                f"Grafana at {self.url} did not answer {method} {path} within {TIMEOUT_SECONDS} s"
            ) from None
        if response.status_code == 404 and missing_ok:
            return None
        if response.status_code == 401:
            raise PublishError(
                f"Grafana at {self.url} refused the token (401 on {method} {path}): GRAFANA_TOKEN is wrong or expired"
            )
        if response.status_code == 403:
            raise PublishError(
                f"Grafana at {self.url} denied {method} {path} (403): the token's service account needs the Editor role"
            )
        if response.status_code == 404:
            raise PublishError(
                f"Grafana at {self.url} has no {path} (404): is GRAFANA_URL the Grafana workspace's URL?"
            )
        if not response.ok:
            raise PublishError(
                f"Grafana at {self.url} answered {response.status_code} to {method} {path}: {_message(response)}"
            )
        return response.json()

    def ensure_folder(self, uid: str, title: str) -> str:
        """The folder's uid, creating it when missing."""
        if self.call("GET", f"/api/folders/{uid}", missing_ok=True) is None:
            self.call("POST", "/api/folders", {"uid": uid, "title": title})
        return uid

    def save_dashboard(self, model: dict[str, Any], folder_uid: str, message: str) -> dict[str, Any]:
        # id null: Grafana matches on uid, so an existing dashboard of that uid is replaced (overwrite).
        body = {"dashboard": {**model, "id": None}, "folderUid": folder_uid, "overwrite": True, "message": message}
        return self.call("POST", "/api/dashboards/db", body)


def _message(response: requests.Response) -> str:
    try:
        return str(response.json().get("message", response.text[:200]))
    except ValueError:
        return response.text[:200]


def publish(
    grafana: Grafana, dashboards: dict[str, dict[str, Any]], folder_uid: str, folder_title: str, message: str
) -> list[str]:
    """Every dashboard into the folder; returns their URLs in Grafana."""
    folder = grafana.ensure_folder(folder_uid, folder_title)
    return [grafana.url + grafana.save_dashboard(model, folder, message)["url"] for model in dashboards.values()]
