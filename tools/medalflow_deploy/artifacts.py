"""What one deployment ships: the runtime only, from git-tracked files, with a manifest built for the environment.

What goes where, in the environment's bucket under an optional prefix (``MWAA_PREFIX``)::

    <prefix>/dags/                the DagS3Path MWAA syncs to /usr/local/airflow/dags on every component:
        *.py, medalflow/, config/     the git-tracked files of dags/ (DAG files, the runtime package, source configs)
        dbt_project/                  the tracked dbt project, with target/manifest.json built for the environment's
                                      dbt target and settings (never the laptop's DuckDB one)
        profiles/                     dbt's profiles.yml (every secret in it is env_var())
    <prefix>/requirements.txt     requirements/requirements.txt, MWAA's --constraint line included
    <prefix>/plugins.zip          the tracked files of plugins/, zipped reproducibly; only when there are some
    <prefix>/startup.sh           deploy/mwaa_startup.sh rendered for the environment

Only files git tracks ship: an untracked scratch file or a git-ignored ``dags/.env`` stays on the laptop. tools/,
tests/ and the rest of the repository never ship.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shlex
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from medalflow_deploy.config import DeployConfig, DeployError

Log = Callable[[str], None]

# Where the deploy tooling (and the virtualenvs it runs dbt and Airflow from) lives; the project it ships may be
# another checkout (--project-root).
TOOL_ROOT = Path(__file__).resolve().parents[2]
SHIPPED_FOLDERS = ("dags", "plugins", "dbt_project", "profiles")
JUNK_DIRECTORIES = frozenset({"__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache", ".ipynb_checkpoints"})
JUNK_FILES = frozenset({".DS_Store", ".gitkeep"})
JUNK_SUFFIXES = (".pyc", ".pyo")
# dbt writes these into the project; the manifest is built apart and added under target/.
DBT_GENERATED = frozenset({"target", "logs", ".user.yml", "dbt_packages"})
MANIFEST_KEY = "dags/dbt_project/target/manifest.json"

STARTUP_TEMPLATE = Path("deploy") / "mwaa_startup.sh"
RENDER_BEGIN = "# >>> medalflow: rendered by deploy.py >>>"
RENDER_END = "# <<< medalflow: rendered by deploy.py <<<"
# Written into the startup script: the one script that builds dbt's venv, and what it builds it from.
DBT_BUILD_INPUTS = {
    "build_dbt_venv.sh": Path("scripts") / "build_dbt_venv.sh",
    "dbt.lock.txt": Path("requirements") / "lock" / "dbt.lock.txt",
}


@dataclass(frozen=True)
class Artifact:
    """One object to upload: its key relative to the environment's prefix, and its content."""

    key: str
    body: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()

    @property
    def md5(self) -> str:
        return hashlib.md5(self.body, usedforsecurity=False).hexdigest()


@dataclass(frozen=True)
class DeployPlan:
    """Everything one deployment uploads."""

    dags: tuple[Artifact, ...]
    requirements: Artifact
    startup_script: Artifact
    plugins: Artifact | None
    plugin_files: tuple[Artifact, ...] = ()

    @property
    def pinned(self) -> list[Artifact]:
        """The objects MWAA pins by version (the DAG folder it syncs as a whole)."""
        return [self.requirements, self.startup_script, *([self.plugins] if self.plugins else [])]

    def dags_digest(self) -> str:
        """One digest of the DAG folder's keys and contents: equal digests, equal DAG folders."""
        digest = hashlib.sha256()
        for artifact in sorted(self.dags, key=lambda item: item.key):
            digest.update(f"{artifact.key}\0{artifact.sha256}\n".encode())
        return digest.hexdigest()


def tracked_files(root: Path, folders: Iterable[str] = SHIPPED_FOLDERS) -> list[str]:
    """The files git tracks under ``folders`` that exist in the working tree, as repository-relative paths."""
    try:
        listed = subprocess.run(
            ["git", "-C", str(root), "ls-files", "-z", "--cached", "--", *folders],
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        raise DeployError(
            f"{root} is not a git checkout (git ls-files failed): deploy ships only the files git tracks"
        ) from error
    files = []
    for name in sorted(set(filter(None, listed.decode().split("\0")))):
        parts = Path(name).parts
        if JUNK_DIRECTORIES.intersection(parts[:-1]) or parts[-1] in JUNK_FILES or name.endswith(JUNK_SUFFIXES):
            continue
        if parts[0] == "dbt_project" and len(parts) > 1 and parts[1] in DBT_GENERATED:
            continue
        if (root / name).is_file():  # tracked but deleted in the working tree: gone from the deployment too
            files.append(name)
    return files


def dags_artifacts(root: Path, files: Iterable[str], manifest: bytes) -> list[Artifact]:
    """What goes under <prefix>/dags/: tracked dags/, the dbt project with the manifest given, dbt's profiles."""
    artifacts = [Artifact(MANIFEST_KEY, manifest)]
    for name in files:
        top = name.partition("/")[0]
        if top == "dags":
            key = name
        elif top in ("dbt_project", "profiles"):
            key = f"dags/{name}"
        else:
            continue
        artifacts.append(Artifact(key, (root / name).read_bytes()))
    keys = [artifact.key for artifact in artifacts]
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    if duplicates:
        raise DeployError(f"two project files would land on the same key: {', '.join(duplicates)}")
    return sorted(artifacts, key=lambda artifact: artifact.key)


def zip_plugins(files: Iterable[Artifact]) -> bytes | None:
    """The plugin files as a zip whose bytes depend on names and contents only; None when there is nothing to ship.

    Fixed timestamps and permissions make unchanged plugins produce the same zip, so no new object version and no
    environment restart on a rerun.
    """
    files = sorted(files, key=lambda artifact: artifact.key)
    if not files:
        return None
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for artifact in files:
            entry = zipfile.ZipInfo(artifact.key, date_time=(1980, 1, 1, 0, 0, 0))
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            archive.writestr(entry, artifact.body)
    return buffer.getvalue()


def uv_version(root: Path) -> str:
    """The uv version the Makefile pins; the startup script installs the same one."""
    match = re.search(r"^UV_VERSION\s*:?=\s*(\S+)\s*$", (root / "Makefile").read_text(), re.MULTILINE)
    if not match:
        raise DeployError(f"{root / 'Makefile'}: no UV_VERSION := line")
    return match.group(1)


def _heredoc(target: str, content: str, delimiter: str) -> str:
    if not content.endswith("\n"):
        content += "\n"
    if delimiter in content.splitlines():
        raise DeployError(f"{target} contains the line {delimiter!r}, which would end its here-document early")
    return f"  cat > \"$1/{target}\" <<'{delimiter}'\n{content}{delimiter}\n"


def render_startup_script(template: str, config: DeployConfig, build_inputs: Mapping[str, str], uv: str) -> str:
    """deploy/mwaa_startup.sh with the block between its markers filled in for one environment."""
    head, begin, rest = template.partition(RENDER_BEGIN + "\n")
    _unrendered, end, tail = rest.partition(RENDER_END + "\n")
    if not begin or not end:
        raise DeployError(f"{STARTUP_TEMPLATE}: the markers {RENDER_BEGIN!r} and {RENDER_END!r} are missing")
    lines = [
        f"# Rendered for {config.environment} from deploy/{config.environment}.env; edit deploy/mwaa_startup.sh, "
        "not this copy.",
        f"medalflow_environment={shlex.quote(config.environment)}",
        f"medalflow_uv_version={shlex.quote(uv)}",
        f"medalflow_dbt_build_budget={int(config.startup_budget_seconds)}",
        *(f"export {name}={shlex.quote(value)}" for name, value in config.runtime_settings.items()),
        "medalflow_write_dbt_inputs() {",
    ]
    heredocs = [
        _heredoc(name, content, "MEDALFLOW_END_OF_" + re.sub(r"\W", "_", name).upper())
        for name, content in build_inputs.items()
    ]
    return head + begin + "\n".join(lines) + "\n" + "".join(heredocs) + "}\n" + end + tail


# --- the manifest, built for the environment's target --------------------------------------------------------------


def cache_dir(root: Path, environment: str) -> Path:
    """Where deploy keeps what it builds per environment (git-ignored .local/)."""
    return root / ".local" / "deploy" / environment


# Parsing needs no AWS access: the deploying user's credentials stay out of dbt's and Airflow's processes (and a DAG
# file that calls AWS while it is parsed fails the DagBag check, as it should).
AWS_CREDENTIAL_VARIABLES = frozenset(
    {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE"}
)


def dbt_environment(root: Path, config: DeployConfig) -> dict[str, str]:
    """The environment dbt parses in: this process's, without the laptop's MEDALFLOW_* settings and AWS credentials,
    with the target's settings."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("MEDALFLOW_") and name not in AWS_CREDENTIAL_VARIABLES
    }
    environment.update(config.runtime_settings)
    environment.update(
        MEDALFLOW_DBT_PROJECT_DIR=str(root / "dbt_project"),
        MEDALFLOW_DBT_PROFILES_DIR=str(root / "profiles"),
        MEDALFLOW_DBT_EXECUTABLE=str(TOOL_ROOT / ".venv" / "dbt" / "bin" / "dbt"),
        PYTHONPATH=str(root / "dags"),
        DBT_SEND_ANONYMOUS_USAGE_STATS="False",
        DO_NOT_TRACK="1",
    )
    return environment


def build_target_manifest(root: Path, config: DeployConfig, files: Iterable[str], log: Log) -> bytes:
    """dbt's manifest.json for the environment's target (``dbt parse --target <target>`` with its settings).

    Built in .local/deploy/<env>/ (the laptop's dbt_project/target/ is never touched) and reused while the tracked
    dbt project, the profiles and the settings stay the same.
    """
    inputs = hashlib.sha256(json.dumps(dict(config.runtime_settings), sort_keys=True).encode())
    for name in files:
        if name.startswith(("dbt_project/", "profiles/")):
            inputs.update(f"{name}\0".encode() + hashlib.sha256((root / name).read_bytes()).digest())
    digest = inputs.hexdigest()
    cache = cache_dir(root, config.environment)
    target_path = cache / "dbt-target"
    manifest = target_path / "manifest.json"
    stamp = cache / "manifest.inputs.sha256"
    if manifest.is_file() and stamp.is_file() and stamp.read_text().strip() == digest:
        log(f"  dbt manifest for target {config.dbt_target}: unchanged inputs, reused")
        return manifest.read_bytes()

    log(f"  dbt parse --target {config.dbt_target} (the environment's settings) into {target_path}")
    cache.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "medalflow.dbt_commands",
        "parse",
        "--target-path",
        str(target_path),
        "--log-path",
        str(cache / "dbt-logs"),
    ]
    completed = subprocess.run(
        command, env=dbt_environment(root, config), capture_output=True, text=True, check=False, timeout=600
    )
    if completed.returncode or not manifest.is_file():
        # dbt's output names the model or profile setting at fault; the settings it read are not secrets (checked).
        tail = "\n".join((completed.stdout + completed.stderr).strip().splitlines()[-15:])
        raise DeployError(f"dbt parse --target {config.dbt_target} failed (exit {completed.returncode}):\n{tail}")
    stamp.write_text(digest + "\n")
    return manifest.read_bytes()


def build_plan(
    root: Path, config: DeployConfig, log: Log = lambda _: None, manifest: bytes | None = None
) -> DeployPlan:
    """Everything to upload for one environment, from the tracked files of the checkout at ``root``."""
    files = tracked_files(root)
    if manifest is None:
        manifest = build_target_manifest(root, config, files, log)
    build_inputs = {name: (root / path).read_text() for name, path in DBT_BUILD_INPUTS.items()}
    startup = render_startup_script((root / STARTUP_TEMPLATE).read_text(), config, build_inputs, uv_version(root))
    plugin_files = tuple(
        Artifact(name.removeprefix("plugins/"), (root / name).read_bytes())
        for name in files
        if name.startswith("plugins/")
    )
    plugins = zip_plugins(plugin_files)
    return DeployPlan(
        dags=tuple(dags_artifacts(root, files, manifest)),
        requirements=Artifact("requirements.txt", (root / "requirements" / "requirements.txt").read_bytes()),
        startup_script=Artifact("startup.sh", startup.encode()),
        plugins=Artifact("plugins.zip", plugins) if plugins is not None else None,
        plugin_files=plugin_files,
    )
