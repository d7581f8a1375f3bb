"""Every deployment recorded in the bucket, so ``--rollback`` works from any machine.

``<prefix>/deployments/history.json`` holds one record per deployment (and per rollback), oldest first: the object
versions MWAA was pointed at (requirements, plugins, startup script), the version id of every object under dags/
and their digest, the git commit, when and by whom (the caller's ARN), and whether the update succeeded. The file is
itself a versioned object, so even a bad write of it can be undone in S3.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from medalflow_deploy.config import DeployConfig, DeployError
from medalflow_deploy.s3sync import error_code

HISTORY_KEY = "deployments/history.json"
SUCCEEDED, FAILED = "succeeded", "failed"


@dataclass
class Deployment:
    id: str
    environment: str
    time: str
    who: str
    git_commit: str
    git_dirty: bool
    dags_digest: str
    dags: dict[str, str]
    pinned: dict[str, str]
    # What the smoke test expects to find (the DagBag check's answer at the time).
    dag_ids: list[str] = field(default_factory=list)
    status: str = SUCCEEDED
    # For a rollback: the id of the deployment it restored.
    restores: str | None = None
    error: str | None = None

    @property
    def content_id(self) -> str:
        """The deployment whose content this one runs (itself, or the one a rollback restored)."""
        return self.restores or self.id


def git_commit(root: Path) -> tuple[str, bool]:
    """The checkout's commit and whether tracked files differ from it (a deployment of uncommitted work)."""

    def git(*arguments: str) -> str:
        return subprocess.run(["git", "-C", str(root), *arguments], capture_output=True, text=True, check=False).stdout

    commit = git("rev-parse", "HEAD").strip() or "unknown"
    dirty = bool(git("status", "--porcelain", "--untracked-files=no").strip())
    return commit, dirty


def new_id(now: datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%S.%fZ")


def now_utc() -> datetime:
    return datetime.now(UTC)


def load(s3: Any, config: DeployConfig) -> list[Deployment]:
    try:
        body = s3.get_object(Bucket=config.bucket, Key=config.key(HISTORY_KEY))["Body"].read()
    except Exception as error:
        if error_code(error) in ("NoSuchKey", "404", "NotFound"):
            return []
        raise
    return [Deployment(**record) for record in json.loads(body)["deployments"]]


def save(s3: Any, config: DeployConfig, deployments: list[Deployment]) -> None:
    body = json.dumps({"deployments": [asdict(item) for item in deployments]}, indent=1, sort_keys=True)
    s3.put_object(Bucket=config.bucket, Key=config.key(HISTORY_KEY), Body=body.encode(), ContentType="application/json")


def append(s3: Any, config: DeployConfig, deployment: Deployment) -> None:
    save(s3, config, [*load(s3, config), deployment])


def rollback_target(deployments: list[Deployment]) -> Deployment:
    """The deployment before the one running now: the last successful one older than what the latest record runs.

    After a rollback to B (records A, B, C, rollback->B) another rollback goes to A: each rollback steps back once.
    """
    if not deployments:
        raise DeployError("no deployment is recorded for this environment yet: nothing to roll back to")
    by_id = {item.id: index for index, item in enumerate(deployments)}
    running = by_id.get(deployments[-1].content_id, len(deployments) - 1)
    for item in reversed(deployments[:running]):
        if item.status == SUCCEEDED and item.restores is None:
            return item
    raise DeployError(
        f"no successful deployment recorded before {deployments[running].id}: nothing earlier to roll back to"
    )


def summary(deployment: Deployment) -> str:
    dirty = " (uncommitted changes)" if deployment.git_dirty else ""
    return f"{deployment.id} by {deployment.who}, commit {deployment.git_commit[:12]}{dirty}"
