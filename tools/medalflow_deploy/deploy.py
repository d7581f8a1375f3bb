"""Deploys the project to an AWS MWAA environment; ``deploy.sh dev|hom|prod`` is its front door.

What goes where, in the environment's bucket under an optional prefix (``MWAA_PREFIX``)::

    <prefix>/dags/                the DagS3Path MWAA syncs to /usr/local/airflow/dags on every component:
        *.py, medalflow/, config/     dags/ as it is in the repository (DAG files, the package, source configs)
        dbt_project/                  the dbt project with target/manifest.json (no other target/ files, no logs)
        profiles/                     dbt's profiles.yml (every secret in it is env_var())
    <prefix>/requirements.txt     requirements/requirements.txt, MWAA's --constraint line included
    <prefix>/plugins.zip          plugins/, zipped reproducibly; only when plugins/ has content
    <prefix>/startup.sh           deploy/mwaa_startup.sh rendered for the environment: the MEDALFLOW_* settings of
                                  deploy/<env>.env, and scripts/build_dbt_venv.sh and dbt's lock file written inside

MWAA fetches the startup script on its own, before the DAG sync is guaranteed to be there, so the startup script
carries what it needs to build dbt's virtualenv. That also ties dbt's lock to a startup script version: changing the
lock changes the script, and so updates (restarts) the environment, which rebuilds the virtualenv.

Safe to rerun: a file whose content is already in S3 is not uploaded again (its object version stays the same), files
gone from the project are deleted from the DAGs prefix, and the environment is updated (MWAA restarts its components,
which takes a while) only when an object version or an Airflow option differs from what it runs.

No DAG imports this module; boto3 is imported inside the functions that call AWS all the same. ``AWS_ENDPOINT_URL``
(and ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL_MWAA``) point it at an emulator, as the tests do.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import shlex
import sys
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENTS = ("dev", "hom", "prod")
PLACEHOLDER = "REPLACE_ME"
SECRETS_MANAGER_BACKEND = "airflow.providers.amazon.aws.secrets.secrets_manager.SecretsManagerBackend"

# deploy/<env>.env: the deployment settings, each required unless it has a default here.
DEPLOY_SETTINGS = {
    "MWAA_ENVIRONMENT_NAME": None,
    "AWS_REGION": None,
    "MWAA_BUCKET": None,
    "MWAA_PREFIX": "",
    "SECRETS_CONNECTIONS_PREFIX": None,
    "SECRETS_VARIABLES_PREFIX": None,
}
# MEDALFLOW_* lines are runtime settings the startup script exports to every Airflow process; these must be there.
REQUIRED_RUNTIME_SETTINGS = ("MEDALFLOW_DBT_TARGET", "MEDALFLOW_LAKE_URI")
# The startup script derives these from MWAA's layout; a value in deploy/<env>.env would only be overwritten.
LAYOUT_SETTINGS = ("MEDALFLOW_DBT_EXECUTABLE", "MEDALFLOW_DBT_PROJECT_DIR", "MEDALFLOW_DBT_PROFILES_DIR")
# Runtime settings end up in plain text in the startup script in S3: a name like these belongs in Secrets Manager.
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|PRIVATE_KEY|ACCESS_KEY")

# MWAA accepts an update only in these states; in the others an update is refused (or would race one in progress).
UPDATABLE_STATUSES = ("AVAILABLE", "UPDATE_FAILED")

JUNK_DIRECTORIES = frozenset({"__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache", ".ipynb_checkpoints"})
JUNK_FILES = frozenset({".DS_Store", ".gitkeep"})
JUNK_SUFFIXES = (".pyc", ".pyo")
# dbt writes these into the project; only target/manifest.json is needed on MWAA (Cosmos renders the DAG from it).
DBT_GENERATED = frozenset({"target", "logs", ".user.yml"})

STARTUP_TEMPLATE = Path("deploy") / "mwaa_startup.sh"
RENDER_BEGIN = "# >>> medalflow: rendered by deploy.py >>>"
RENDER_END = "# <<< medalflow: rendered by deploy.py <<<"
# Written into the startup script: the one script that builds dbt's venv, and what it builds it from.
DBT_BUILD_INPUTS = {
    "build_dbt_venv.sh": Path("scripts") / "build_dbt_venv.sh",
    "dbt.lock.txt": Path("requirements") / "lock" / "dbt.lock.txt",
}

Log = Callable[[str], None]


class DeployError(Exception):
    """A deployment cannot go ahead; the message says what to fix."""


# --- configuration -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeployConfig:
    """One environment's deployment settings, from deploy/<env>.env."""

    environment: str
    mwaa_environment_name: str
    region: str
    bucket: str
    prefix: str
    connections_prefix: str
    variables_prefix: str
    runtime_settings: Mapping[str, str] = field(default_factory=dict)

    def key(self, relative: str) -> str:
        """The S3 key of a path relative to the environment's prefix."""
        return f"{self.prefix}/{relative}" if self.prefix else relative

    @property
    def dags_path(self) -> str:
        return self.key("dags")

    def airflow_configuration_options(self) -> dict[str, str]:
        """The Airflow options deploy owns: connections and variables come from Secrets Manager."""
        kwargs = {"connections_prefix": self.connections_prefix, "variables_prefix": self.variables_prefix}
        return {
            "secrets.backend": SECRETS_MANAGER_BACKEND,
            "secrets.backend_kwargs": json.dumps(kwargs, sort_keys=True),
        }


def parse_env_file(text: str, source: str) -> dict[str, str]:
    """KEY=VALUE lines; blank lines and # comments ignored; a value may be quoted. Malformed lines are errors."""
    settings: dict[str, str] = {}
    for number, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        name, separator, value = line.removeprefix("export ").partition("=")
        name, value = name.strip(), value.strip()
        if not separator or not re.fullmatch(r"[A-Z][A-Z0-9_]*", name):
            raise DeployError(f"{source}:{number}: expected NAME=value, got {raw_line!r}")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        if name in settings:
            raise DeployError(f"{source}:{number}: {name} is set twice")
        settings[name] = value
    return settings


def load_config(environment: str, path: Path) -> DeployConfig:
    """Read and check deploy/<env>.env; every missing, unknown or placeholder setting is named in one error."""
    if environment not in ENVIRONMENTS:
        raise DeployError(f"unknown environment {environment!r}: expected one of {', '.join(ENVIRONMENTS)}")
    if not path.is_file():
        raise DeployError(f"no deployment settings for {environment}: {path} not found")
    settings = parse_env_file(path.read_text(), str(path))

    problems = []
    unknown = sorted(name for name in settings if name not in DEPLOY_SETTINGS and not name.startswith("MEDALFLOW_"))
    if unknown:
        problems.append(f"unknown settings {', '.join(unknown)} (known: {', '.join(DEPLOY_SETTINGS)}, MEDALFLOW_*)")
    required = [name for name, default in DEPLOY_SETTINGS.items() if default is None] + list(REQUIRED_RUNTIME_SETTINGS)
    missing = [name for name in required if not settings.get(name)]
    if missing:
        problems.append(f"missing settings {', '.join(missing)}")
    placeholders = [name for name, value in settings.items() if PLACEHOLDER in value]
    if placeholders:
        problems.append(f"placeholders ({PLACEHOLDER}) still in {', '.join(placeholders)}")
    secrets = [name for name in settings if name.startswith("MEDALFLOW_") and SECRET_NAME.search(name)]
    if secrets:
        problems.append(f"{', '.join(secrets)} look like secrets: keep them in Secrets Manager, not in this file")
    layout = [name for name in LAYOUT_SETTINGS if name in settings]
    if layout:
        problems.append(f"{', '.join(layout)} cannot be set here: the startup script derives them from MWAA's layout")
    if problems:
        raise DeployError(f"{path}: " + "; ".join(problems))

    values = {name: settings.get(name, default) for name, default in DEPLOY_SETTINGS.items()}
    return DeployConfig(
        environment=environment,
        mwaa_environment_name=values["MWAA_ENVIRONMENT_NAME"],
        region=values["AWS_REGION"],
        bucket=values["MWAA_BUCKET"],
        prefix=values["MWAA_PREFIX"].strip("/"),
        connections_prefix=values["SECRETS_CONNECTIONS_PREFIX"],
        variables_prefix=values["SECRETS_VARIABLES_PREFIX"],
        runtime_settings={name: value for name, value in sorted(settings.items()) if name.startswith("MEDALFLOW_")},
    )


# --- what to upload ----------------------------------------------------------------------------------------------


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


def project_files(folder: Path, skip: frozenset[str] = frozenset()) -> Iterator[Path]:
    """Files under a folder in sorted order, without caches, bytecode or names in ``skip`` (at the top level)."""
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if relative.parts[0] in skip or JUNK_DIRECTORIES.intersection(relative.parts[:-1]):
            continue
        if path.is_file() and path.name not in JUNK_FILES and not path.name.endswith(JUNK_SUFFIXES):
            yield path


def dags_artifacts(root: Path) -> list[Artifact]:
    """What goes under <prefix>/dags/: dags/ as it is, the dbt project with its manifest, dbt's profiles."""
    manifest = root / "dbt_project" / "target" / "manifest.json"
    if not manifest.is_file():
        raise DeployError(f"{manifest} not found: run `make manifest` (deploy.sh does) before deploying")
    sources = [
        *(("dags", path, path.relative_to(root / "dags")) for path in project_files(root / "dags")),
        *(
            ("dags/dbt_project", path, path.relative_to(root / "dbt_project"))
            for path in project_files(root / "dbt_project", skip=DBT_GENERATED)
        ),
        ("dags/dbt_project", manifest, manifest.relative_to(root / "dbt_project")),
        *(("dags/profiles", path, path.relative_to(root / "profiles")) for path in project_files(root / "profiles")),
    ]
    artifacts = [Artifact(f"{prefix}/{relative.as_posix()}", path.read_bytes()) for prefix, path, relative in sources]
    keys = [artifact.key for artifact in artifacts]
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    if duplicates:
        raise DeployError(f"two project files would land on the same key: {', '.join(duplicates)}")
    return sorted(artifacts, key=lambda artifact: artifact.key)


def zip_plugins(folder: Path) -> bytes | None:
    """plugins/ as a zip whose bytes depend on file names and contents only; None when there is nothing to ship.

    Fixed timestamps and permissions make an unchanged plugins/ produce the same zip, so no new object version and
    no environment restart on a rerun.
    """
    files = list(project_files(folder)) if folder.is_dir() else []
    if not files:
        return None
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in files:
            entry = zipfile.ZipInfo(path.relative_to(folder).as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            archive.writestr(entry, path.read_bytes())
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
        *(f"export {name}={shlex.quote(value)}" for name, value in config.runtime_settings.items()),
        "medalflow_write_dbt_inputs() {",
    ]
    heredocs = [
        _heredoc(name, content, "MEDALFLOW_END_OF_" + re.sub(r"\W", "_", name).upper())
        for name, content in build_inputs.items()
    ]
    return head + begin + "\n".join(lines) + "\n" + "".join(heredocs) + "}\n" + end + tail


def build_plan(root: Path, config: DeployConfig) -> DeployPlan:
    """Everything to upload for one environment, read from the working tree."""
    build_inputs = {name: (root / path).read_text() for name, path in DBT_BUILD_INPUTS.items()}
    startup = render_startup_script((root / STARTUP_TEMPLATE).read_text(), config, build_inputs, uv_version(root))
    plugins = zip_plugins(root / "plugins")
    return DeployPlan(
        dags=tuple(dags_artifacts(root)),
        requirements=Artifact("requirements.txt", (root / "requirements" / "requirements.txt").read_bytes()),
        startup_script=Artifact("startup.sh", startup.encode()),
        plugins=Artifact("plugins.zip", plugins) if plugins is not None else None,
    )


# --- S3 ----------------------------------------------------------------------------------------------------------

# Stands for the version an upload would create, in a dry run.
PENDING_VERSION = "(new version)"
# DeleteObjects takes at most this many keys.
DELETE_BATCH = 1000


def _error_code(error: Exception) -> str:
    return str(getattr(error, "response", {}).get("Error", {}).get("Code", ""))


def check_bucket_versioning(s3: Any, bucket: str) -> None:
    """MWAA pins requirements, plugins and the startup script by object version: the bucket must be versioned."""
    status = s3.get_bucket_versioning(Bucket=bucket).get("Status")
    if status != "Enabled":
        raise DeployError(f"s3://{bucket} has versioning {status or 'never enabled'}: MWAA needs it Enabled")


def _is_current(s3: Any, bucket: str, key: str, artifact: Artifact, etag: str, metadata: Mapping | None) -> bool:
    """True when the object holds the artifact's bytes: by ETag (MD5 for plain uploads), else by our sha256."""
    if etag.strip('"') == artifact.md5:
        return True
    if metadata is None:  # e.g. SSE-KMS, where the ETag is not the MD5: compare the digest stored at upload
        metadata = s3.head_object(Bucket=bucket, Key=key).get("Metadata", {})
    return metadata.get("sha256") == artifact.sha256


def _put(s3: Any, bucket: str, key: str, artifact: Artifact) -> str | None:
    response = s3.put_object(Bucket=bucket, Key=key, Body=artifact.body, Metadata={"sha256": artifact.sha256})
    return response.get("VersionId")


@dataclass
class SyncReport:
    uploaded: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: int = 0


def sync_dags(s3: Any, config: DeployConfig, artifacts: Iterable[Artifact], dry_run: bool, log: Log) -> SyncReport:
    """Make <prefix>/dags/ hold exactly the artifacts: upload what differs, delete what the project no longer has."""
    prefix = config.dags_path + "/"
    remote: dict[str, str] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=config.bucket, Prefix=prefix):
        remote.update({item["Key"]: item["ETag"] for item in page.get("Contents", [])})

    report = SyncReport()
    wanted = set()
    for artifact in artifacts:
        key = config.key(artifact.key)
        wanted.add(key)
        if key in remote and _is_current(s3, config.bucket, key, artifact, remote[key], None):
            report.unchanged += 1
            continue
        log(f"  {'would upload' if dry_run else 'upload'} s3://{config.bucket}/{key}")
        if not dry_run:
            _put(s3, config.bucket, key, artifact)
        report.uploaded.append(key)

    report.deleted = sorted(set(remote) - wanted)
    for key in report.deleted:
        log(f"  {'would delete' if dry_run else 'delete'} s3://{config.bucket}/{key}")
    if not dry_run:
        for start in range(0, len(report.deleted), DELETE_BATCH):
            batch = [{"Key": key} for key in report.deleted[start : start + DELETE_BATCH]]
            s3.delete_objects(Bucket=config.bucket, Delete={"Objects": batch, "Quiet": True})
    return report


def publish_versioned(s3: Any, config: DeployConfig, artifact: Artifact, dry_run: bool, log: Log) -> str:
    """Upload one MWAA-pinned object unless S3 already has this content; return the object version to pin."""
    key = config.key(artifact.key)
    try:
        head = s3.head_object(Bucket=config.bucket, Key=key)
    except Exception as error:
        if _error_code(error) not in ("404", "NoSuchKey", "NotFound"):
            raise
        head = None
    # A "null" version predates versioning on the bucket: MWAA cannot pin it, so upload a versioned copy.
    versioned = head is not None and head.get("VersionId") not in (None, "null")
    if versioned and _is_current(s3, config.bucket, key, artifact, head["ETag"], head.get("Metadata", {})):
        log(f"  unchanged s3://{config.bucket}/{key} (version {head['VersionId']})")
        return head["VersionId"]
    if dry_run:
        log(f"  would upload s3://{config.bucket}/{key}")
        return PENDING_VERSION
    version = _put(s3, config.bucket, key, artifact)
    if not version:
        raise DeployError(f"S3 returned no version for s3://{config.bucket}/{key}: is the bucket versioned?")
    log(f"  upload s3://{config.bucket}/{key} (version {version})")
    return version


# --- MWAA --------------------------------------------------------------------------------------------------------


def update_request(config: DeployConfig, versions: Mapping[str, str], current_options: Mapping[str, str]) -> dict:
    """UpdateEnvironment's parameters: paths and versions of the uploads, and deploy's Airflow options merged into
    the ones the environment has (options set elsewhere, e.g. by infrastructure code, are kept)."""
    request: dict[str, Any] = {
        "Name": config.mwaa_environment_name,
        "DagS3Path": config.dags_path,
        "RequirementsS3Path": config.key("requirements.txt"),
        "RequirementsS3ObjectVersion": versions["requirements.txt"],
        "StartupScriptS3Path": config.key("startup.sh"),
        "StartupScriptS3ObjectVersion": versions["startup.sh"],
        "AirflowConfigurationOptions": {**current_options, **config.airflow_configuration_options()},
    }
    if "plugins.zip" in versions:
        request["PluginsS3Path"] = config.key("plugins.zip")
        request["PluginsS3ObjectVersion"] = versions["plugins.zip"]
    return request


def environment_changes(environment: Mapping[str, Any], request: Mapping[str, Any]) -> list[str]:
    """What the request would change in the environment (GetEnvironment's description), one line per field."""
    changes = []
    for name, wanted in request.items():
        current = environment.get(name)
        if name == "AirflowConfigurationOptions":
            current = current or {}
            changes += [f"{name}[{option}]" for option in sorted(wanted) if current.get(option) != wanted[option]]
        elif name != "Name" and current != wanted:
            changes.append(f"{name}: {current} -> {wanted}")
    return changes


def update_environment(mwaa: Any, config: DeployConfig, versions: Mapping[str, str], dry_run: bool, log: Log) -> bool:
    """Point the environment at the new versions and options; no call (and no restart) when nothing differs."""
    try:
        environment = mwaa.get_environment(Name=config.mwaa_environment_name)["Environment"]
    except Exception as error:
        if _error_code(error) == "ResourceNotFoundException":
            raise DeployError(
                f"no MWAA environment {config.mwaa_environment_name!r} in {config.region}: create it first "
                "(deploy.sh updates an environment, it does not create one)"
            ) from error
        raise
    request = update_request(config, versions, environment.get("AirflowConfigurationOptions") or {})
    changes = environment_changes(environment, request)
    if not changes:
        log(f"MWAA environment {config.mwaa_environment_name} already runs this deployment: not updated")
        return False
    status = environment.get("Status", "UNKNOWN")
    if status not in UPDATABLE_STATUSES:
        raise DeployError(
            f"MWAA environment {config.mwaa_environment_name} is {status}: rerun deploy.sh once it is AVAILABLE "
            "(the uploads are done; a rerun only updates the environment)"
        )
    for change in changes:
        log(f"  {change}")
    if dry_run:
        log(f"would update MWAA environment {config.mwaa_environment_name} (its components restart)")
        return True
    mwaa.update_environment(**request)
    log(f"updating MWAA environment {config.mwaa_environment_name}: components restart over the next minutes")
    return True


def aws_clients(region: str) -> tuple[Any, Any]:
    """S3 and MWAA clients; AWS_ENDPOINT_URL* and the usual credential chain apply."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(region_name=region)
    s3 = session.client("s3")
    mwaa = session.client("mwaa")
    hostname = urlsplit(mwaa.meta.endpoint_url).hostname or ""
    if "amazonaws.com" not in hostname:
        # MWAA's API puts "api." in front of the host; an emulator on 127.0.0.1 has no such name.
        mwaa = session.client("mwaa", config=Config(inject_host_prefix=False))
    return s3, mwaa


# --- the whole deployment ----------------------------------------------------------------------------------------


def deploy(config: DeployConfig, plan: DeployPlan, s3: Any, mwaa: Any, dry_run: bool, log: Log = print) -> bool:
    """Upload the plan and update the environment; returns whether the environment was (or would be) updated.

    DAGs first: the startup script, requirements and plugins take effect only when the environment restarts, and by
    then the DAG folder must already hold the code that goes with them.
    """
    check_bucket_versioning(s3, config.bucket)
    log(f"==> DAGs folder s3://{config.bucket}/{config.dags_path}/")
    report = sync_dags(s3, config, plan.dags, dry_run, log)
    would = "would be " if dry_run else ""
    log(f"  {len(report.uploaded)} {would}uploaded, {len(report.deleted)} {would}deleted, {report.unchanged} unchanged")

    log("==> requirements, plugins and startup script (versioned objects MWAA pins)")
    pinned = [plan.requirements, plan.startup_script, *([plan.plugins] if plan.plugins else [])]
    versions = {artifact.key: publish_versioned(s3, config, artifact, dry_run, log) for artifact in pinned}

    log(f"==> MWAA environment {config.mwaa_environment_name} ({config.region})")
    return update_environment(mwaa, config, versions, dry_run, log)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="deploy.sh", description="Deploy medalflow to an AWS MWAA environment (settings: deploy/<env>.env)."
    )
    parser.add_argument("environment", choices=ENVIRONMENTS)
    parser.add_argument("--dry-run", action="store_true", help="read S3 and MWAA, print what would change, write none")
    parser.add_argument("--config", type=Path, help="settings file instead of deploy/<environment>.env")
    parser.add_argument("--render-startup-script", action="store_true", help="print the rendered startup script")
    options = parser.parse_args(argv)
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        settings_file = options.config or PROJECT_ROOT / "deploy" / f"{options.environment}.env"
        config = load_config(options.environment, settings_file)
        plan = build_plan(PROJECT_ROOT, config)
        if options.render_startup_script:
            sys.stdout.write(plan.startup_script.body.decode())
            return 0
        prefix = f"s3://{config.bucket}/{config.prefix}" if config.prefix else f"s3://{config.bucket}"
        print(f"Deploying to {options.environment}: {prefix}, MWAA {config.mwaa_environment_name}", flush=True)
        s3, mwaa = aws_clients(config.region)
        deploy(config, plan, s3, mwaa, options.dry_run, log=lambda line: print(line, flush=True))
    except DeployError as error:
        print(f"deploy: error: {error}", file=sys.stderr)
        return 1
    except (BotoCoreError, ClientError) as error:  # credentials, network, permissions: AWS's message says which
        print(f"deploy: AWS error: {error}", file=sys.stderr)
        return 1
    print("dry run: nothing was written" if options.dry_run else "done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
