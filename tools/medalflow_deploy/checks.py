"""Checks that run before deploy writes anything: each one fails with what to fix, and nothing is uploaded.

Local checks (the settings, the startup script, the requirements against MWAA's constraints, the manifest's target,
every shipped DAG file importing in Airflow) and AWS checks (the caller's account, the bucket, the environment and
its state) all pass before the first upload, so a broken DAG or a mistyped environment name never reaches the bucket.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from medalflow_deploy.artifacts import TOOL_ROOT, DeployPlan, Log, cache_dir, dbt_environment
from medalflow_deploy.config import STARTUP_MAX_BUDGET_SECONDS, DeployConfig, DeployError

LOCAL_CONSTRAINTS = Path("requirements") / "constraints" / "airflow_constraints.txt"
# What uv resolves for: MWAA's Python and platform (the lock files use the same).
RESOLVE_PLATFORM = ("--python-version", "3.12", "--python-platform", "x86_64-manylinux_2_28")
UV = TOOL_ROOT / ".venv" / "uv" / "bin" / "uv"


def check_account(sts: Any, config: DeployConfig) -> str:
    """The credentials in use belong to the environment's account; returns who is deploying (the caller's ARN)."""
    identity = sts.get_caller_identity()
    if identity["Account"] != config.account_id:
        raise DeployError(
            f"these AWS credentials are for account {identity['Account']}, but {config.environment} lives in "
            f"{config.account_id} (AWS_ACCOUNT_ID): switch AWS_PROFILE (or log in to that account) and rerun"
        )
    return identity["Arn"]


def check_startup_script(plan: DeployPlan, config: DeployConfig) -> None:
    """The rendered startup script is valid bash and carries a dbt build budget inside MWAA's limit."""
    script = plan.startup_script.body.decode()
    checked = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True, check=False)
    if checked.returncode:
        raise DeployError(f"the rendered startup script is not valid bash (bash -n): {checked.stderr.strip()}")
    budget = re.search(r"^medalflow_dbt_build_budget=(\d+)$", script, re.MULTILINE)
    if not budget or not 0 < int(budget.group(1)) <= STARTUP_MAX_BUDGET_SECONDS:
        raise DeployError(
            f"the rendered startup script has no dbt build budget within {STARTUP_MAX_BUDGET_SECONDS} s "
            "(STARTUP_DBT_BUILD_BUDGET_SECONDS)"
        )
    if "timeout " not in script:
        raise DeployError(f"{config.environment}'s startup script does not bound dbt's build with `timeout`")


def check_manifest_target(plan: DeployPlan, root: Path, config: DeployConfig) -> None:
    """The shipped manifest was built for the adapter of the environment's dbt target."""
    profiles = yaml.safe_load((root / "profiles" / "profiles.yml").read_text())
    outputs = next(iter(profiles.values()))["outputs"]
    if config.dbt_target not in outputs:
        raise DeployError(
            f"MEDALFLOW_DBT_TARGET={config.dbt_target} is not a target of profiles/profiles.yml ({', '.join(outputs)})"
        )
    wanted = outputs[config.dbt_target]["type"]
    manifest = next(artifact for artifact in plan.dags if artifact.key.endswith("target/manifest.json"))
    built_for = json.loads(manifest.body)["metadata"].get("adapter_type")
    if built_for != wanted:
        raise DeployError(f"the manifest to ship was built for {built_for}, but {config.environment} runs {wanted}")


def check_requirements(root: Path, plan: DeployPlan, log: Log) -> None:
    """requirements.txt resolves under MWAA's constraints, from uv's cache when it can (offline), else PyPI."""
    requirements = plan.requirements.body.decode()
    constraint_urls = re.findall(r"^--constraint\s+\"?([^\"\s]+)\"?", requirements, re.MULTILINE)
    local = root / LOCAL_CONSTRAINTS
    if not constraint_urls:
        raise DeployError("requirements/requirements.txt has no --constraint line: MWAA needs one")
    if constraint_urls[0] not in local.read_text()[:500]:
        raise DeployError(
            f"requirements/requirements.txt constrains to {constraint_urls[0]}, but {LOCAL_CONSTRAINTS} is a copy "
            "of another file: refresh the copy"
        )
    with tempfile.TemporaryDirectory(prefix="medalflow-requirements-") as folder:
        unconstrained = Path(folder) / "requirements.txt"
        unconstrained.write_text(re.sub(r"^--constraint .*$", "", requirements, flags=re.MULTILINE))
        command = [str(UV), "pip", "compile", "--quiet", str(unconstrained), "-c", str(local), *RESOLVE_PLATFORM]
        command += ["-o", str(Path(folder) / "resolved.txt")]
        environment = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
        offline = subprocess.run([*command, "--offline"], capture_output=True, text=True, env=environment, check=False)
        if offline.returncode == 0:
            log("  requirements.txt resolves under MWAA's constraints (from uv's cache)")
            return
        if "network was disabled" not in offline.stderr and "Network connectivity is disabled" not in offline.stderr:
            raise DeployError(f"requirements.txt does not resolve under MWAA's constraints:\n{offline.stderr.strip()}")
        online = subprocess.run(command, capture_output=True, text=True, env=environment, check=False)
        if online.returncode == 0:
            log("  requirements.txt resolves under MWAA's constraints (PyPI)")
            return
        if re.search(r"dns error|Connect|timed out|connection", online.stderr, re.IGNORECASE):
            raise DeployError(
                "cannot check requirements.txt against MWAA's constraints: uv's cache lacks some packages and PyPI "
                "cannot be reached from here. Rerun with network access (or after `make lock`, which fills the "
                "cache)"
            )
        raise DeployError(f"requirements.txt does not resolve under MWAA's constraints:\n{online.stderr.strip()}")


DAGBAG_SCRIPT = """\
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
with open(sys.argv[2], "w") as out:
    json.dump({"dag_ids": sorted(bag.dag_ids), "import_errors": {
        name: message.strip().splitlines()[-1] if message.strip() else "" for name, message in bag.import_errors.items()
    }}, out)
"""


def _stage(plan: DeployPlan, folder: Path) -> tuple[Path, Path]:
    """Exactly the shipped files, laid out as MWAA lays them out: dags/ (with the dbt project) and plugins/."""
    dags, plugins = folder / "dags", folder / "plugins"
    for artifact in plan.dags:
        target = folder / artifact.key
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(artifact.body)
    plugins.mkdir(parents=True, exist_ok=True)
    for artifact in plan.plugin_files:
        target = plugins / artifact.key
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(artifact.body)
    return dags, plugins


def check_dag_bag(root: Path, plan: DeployPlan, config: DeployConfig, log: Log) -> list[str]:
    """Every shipped DAG file imports in Airflow with no connections; returns the DAG ids (the smoke test's list).

    Airflow runs in a subprocess over a staging copy of exactly the shipped files (so a file that would not ship
    cannot make it pass), with the environment's MEDALFLOW_* settings. The answer is kept per content digest: an
    unchanged deployment does not start Airflow again.
    """
    digest = hashlib.sha256(plan.dags_digest().encode())
    for artifact in plan.plugin_files:
        digest.update(f"{artifact.key}\0{artifact.sha256}\n".encode())
    digest.update(json.dumps(dict(config.runtime_settings), sort_keys=True).encode())
    cached = cache_dir(root, config.environment) / "dagbag" / f"{digest.hexdigest()}.json"
    if cached.is_file():
        result = json.loads(cached.read_text())
        log("  DagBag of the shipped files: unchanged since the last check, reused")
    else:
        with tempfile.TemporaryDirectory(prefix="medalflow-dagbag-") as folder:
            staging = Path(folder)
            dags, plugins = _stage(plan, staging)
            environment = dbt_environment(root, config)
            environment.update(
                AIRFLOW_HOME=str(staging / "airflow-home"),
                AIRFLOW__CORE__DAGS_FOLDER=str(dags),
                AIRFLOW__CORE__PLUGINS_FOLDER=str(plugins),
                AIRFLOW__CORE__LOAD_EXAMPLES="False",
                AIRFLOW__COSMOS__ENABLE_TELEMETRY="False",
                AIRFLOW__USAGE_DATA_COLLECTION__ENABLED="False",
                MEDALFLOW_DBT_PROJECT_DIR=str(dags / "dbt_project"),
                MEDALFLOW_DBT_PROFILES_DIR=str(dags / "profiles"),
                PYTHONPATH=f"{dags}{os.pathsep}{plugins}",
            )
            # No connections: none from the laptop's environment, and no secrets backend.
            environment = {
                name: value
                for name, value in environment.items()
                if not name.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_", "AIRFLOW__SECRETS__", "AIRFLOW__DATABASE__"))
            }
            answer = staging / "dagbag.json"
            completed = subprocess.run(
                [sys.executable, "-c", DAGBAG_SCRIPT, str(dags), str(answer)],
                env=environment,
                capture_output=True,
                text=True,
                check=False,
                timeout=600,
                cwd=staging,
            )
            if completed.returncode or not answer.is_file():
                tail = "\n".join(completed.stderr.strip().splitlines()[-10:])
                raise DeployError(f"Airflow could not load the shipped DAG files ({completed.returncode}):\n{tail}")
            result = json.loads(answer.read_text())
            prefix = str(dags) + os.sep
            errors = result["import_errors"].items()
            result["import_errors"] = {name.removeprefix(prefix): text.replace(prefix, "") for name, text in errors}
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_text(json.dumps(result))
    if result["import_errors"]:
        listed = "; ".join(f"dags/{name}: {message}" for name, message in sorted(result["import_errors"].items()))
        raise DeployError(f"{len(result['import_errors'])} DAG files fail to import, nothing uploaded: {listed}")
    if not result["dag_ids"]:
        raise DeployError("the shipped files declare no DAG: nothing to deploy")
    log(f"  DagBag of the shipped files: {len(result['dag_ids'])} DAGs, 0 import errors")
    return result["dag_ids"]


def remove_stale_caches(root: Path, environment: str, keep: int = 20) -> None:
    """Keep the DagBag answers of the last few deployments only."""
    folder = cache_dir(root, environment) / "dagbag"
    if folder.is_dir():
        answers = sorted(folder.glob("*.json"), key=lambda path: path.stat().st_mtime, reverse=True)
        for path in answers[keep:]:
            path.unlink(missing_ok=True)
    shutil.rmtree(cache_dir(root, environment) / "dbt-logs", ignore_errors=True)
