"""Deploys the project to an AWS MWAA environment; ``deploy.sh dev|hom|prod`` is its front door.

One deployment, in order, and nothing is written before every check has passed:

1. checks (medalflow_deploy.checks): the settings (deploy/<env>.env is for this environment and holds no
   credential), the rendered startup script, dbt's manifest built for the environment's target, requirements.txt
   against MWAA's constraints, every shipped DAG file importing in Airflow; then the AWS side: the caller's account,
   the bucket's versioning, the MWAA environment and its state; and for prod, a confirmation;
2. uploads (medalflow_deploy.s3sync): the DAG folder synced, requirements/plugins/startup script published as
   versioned objects (medalflow_deploy.artifacts says what ships: git-tracked runtime files only);
3. the update (medalflow_deploy.mwaa): UpdateEnvironment when a pinned version or an Airflow option changed, polled
   until AVAILABLE (MWAA's own error reported when it fails), then a smoke test through MWAA's InvokeRestApi;
4. the record (medalflow_deploy.history) in the bucket, which ``--rollback`` steps back through.

Safe to rerun: unchanged files are not uploaded again, and the environment is updated (MWAA restarts its components)
only when something it runs differs. ``./deploy.sh secrets <env>`` pushes the connections
(medalflow_deploy.connections).

No DAG imports this module; boto3 is imported inside the functions that call AWS all the same. ``AWS_ENDPOINT_URL``
(and ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL_MWAA``...) point it at an emulator, as the tests do.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medalflow_deploy import checks, connections, history, mwaa, s3sync
from medalflow_deploy.artifacts import TOOL_ROOT, DeployPlan, Log, build_plan
from medalflow_deploy.config import ENVIRONMENTS, DeployConfig, DeployError, load_config

PROJECT_ROOT = TOOL_ROOT
# Environments whose deployments a person confirms (on a terminal) unless --yes says it is meant.
CONFIRMED_ENVIRONMENTS = ("prod",)


@dataclass(frozen=True)
class Options:
    dry_run: bool = False
    assume_yes: bool = False
    smoke_test: bool = True
    upload_only: bool = False


def confirm(config: DeployConfig, action: str, options: Options, ask: Callable[[str], str] | None = None) -> None:
    """Prod needs a yes: --yes, or the environment's name typed on a terminal. No terminal and no --yes: refused."""
    if options.dry_run or options.assume_yes or config.environment not in CONFIRMED_ENVIRONMENTS:
        return
    if ask is None:
        if not sys.stdin.isatty():
            raise DeployError(
                f"{action} {config.environment} needs a confirmation: run it on a terminal, or pass --yes "
                "(a CI job that means it)"
            )
        ask = input
    answer = ask(
        f"{action} {config.environment} (MWAA {config.mwaa_environment_name}, account {config.account_id}). "
        f"Type {config.environment!r} to go ahead: "
    )
    if answer.strip() != config.environment:
        raise DeployError(f"not confirmed: {config.environment} left as it was")


def confirm_possible(config: DeployConfig, options: Options, action: str) -> None:
    """Refuse at once, before the checks, a deployment that needs a confirmation nobody can give."""
    if config.environment in CONFIRMED_ENVIRONMENTS and not options.assume_yes and not sys.stdin.isatty():
        confirm(config, action, options)


def check_aws(config: DeployConfig, clients: dict[str, Any], log: Log) -> tuple[str, dict[str, Any]]:
    """The AWS-side checks: the account, the bucket, the environment; returns who deploys and the environment."""
    who = checks.check_account(clients["sts"], config)
    log(f"  AWS account {config.account_id} ({who})")
    s3sync.check_bucket_versioning(clients["s3"], config.bucket)
    environment = mwaa.get_environment(clients["mwaa"], config)
    log(f"  MWAA environment {config.mwaa_environment_name}: {environment.get('Status')}")
    return who, environment


def _quiet(_: str) -> None:
    pass


def deploy(
    root: Path,
    config: DeployConfig,
    plan: DeployPlan,
    dag_ids: list[str],
    clients: dict[str, Any],
    options: Options,
    log: Log = print,
) -> bool:
    """Upload the plan and update the environment once every check passed; returns whether anything changed."""
    s3 = clients["s3"]
    if options.upload_only:
        # Before the environment exists (infra/README.md, step 7): its stack needs the objects' versions.
        who = checks.check_account(clients["sts"], config)
        log(f"  AWS account {config.account_id} ({who})")
        s3sync.check_bucket_versioning(s3, config.bucket)
        environment = None
    else:
        who, environment = check_aws(config, clients, log)

    # What would change, read only: the same calls as the writes below, in dry-run mode.
    plan_log = log if options.dry_run else _quiet
    if options.dry_run:
        log(f"==> DAGs folder s3://{config.bucket}/{config.dags_path}/")
    dags_report = s3sync.sync_dags(s3, config, plan.dags, True, plan_log)
    versions = {item.key: s3sync.publish_versioned(s3, config, item, True, plan_log) for item in plan.pinned}
    changes = []
    if environment is not None:
        request = mwaa.update_request(config, versions, environment.get("AirflowConfigurationOptions") or {})
        changes = mwaa.environment_changes(environment, request)
    uploads = dags_report.uploaded or dags_report.deleted or s3sync.PENDING_VERSION in versions.values()
    if not uploads and not changes:
        if environment is None:
            log("the bucket already holds this deployment: nothing uploaded")
            _print_stack_parameters(versions, log)
            return False
        log(f"MWAA environment {config.mwaa_environment_name} already runs this deployment: nothing to do")
        if not options.dry_run and not _is_recorded(s3, config, plan, versions):
            # The environment runs what the checkout holds, but no record says so (its first deployment went
            # through --upload-only and the mwaa stack): record it, so a later --rollback can come back here.
            log("  no deployment record says so yet: smoke-testing and recording it")
            record = _record(root, config, plan, dag_ids, who, versions, s3)
            _update_and_verify(config, clients, environment, versions, dag_ids, record, options, log)
        return False
    if environment is not None:
        mwaa.check_updatable(environment, config)
    if options.dry_run:
        log(f"  {len(dags_report.uploaded)} would be uploaded, {len(dags_report.deleted)} would be deleted")
        for change in changes:
            log(f"  would change {change}")
        if changes:
            log(f"would update MWAA environment {config.mwaa_environment_name} (its components restart)")
        return True
    confirm(config, "Deploying to", options)

    log(f"==> DAGs folder s3://{config.bucket}/{config.dags_path}/")
    report = s3sync.sync_dags(s3, config, plan.dags, False, log)
    log(f"  {len(report.uploaded)} uploaded, {len(report.deleted)} deleted, {report.unchanged} unchanged")
    log("==> requirements, plugins and startup script (versioned objects MWAA pins)")
    versions = {item.key: s3sync.publish_versioned(s3, config, item, False, log) for item in plan.pinned}
    if environment is None:
        _print_stack_parameters(versions, log)
        return True
    record = _record(root, config, plan, dag_ids, who, versions, s3)
    _update_and_verify(config, clients, environment, versions, dag_ids, record, options, log)
    log(f"recorded deployment {record.id} in s3://{config.bucket}/{config.key(history.HISTORY_KEY)}")
    return True


STACK_PARAMETERS = {
    "requirements.txt": "RequirementsS3ObjectVersion",
    "startup.sh": "StartupScriptS3ObjectVersion",
    "plugins.zip": "PluginsS3ObjectVersion",
}


def _print_stack_parameters(versions: dict[str, str], log: Log) -> None:
    """The object versions as infra/mwaa.yaml's parameters, for creating (or updating) the environment's stack."""
    pairs = [f"{STACK_PARAMETERS[key]}={version}" for key, version in sorted(versions.items())]
    log("the mwaa stack's parameters (infra/README.md): " + " ".join(pairs))


def _is_recorded(s3: Any, config: DeployConfig, plan: DeployPlan, versions: dict[str, str]) -> bool:
    deployments = history.load(s3, config)
    if not deployments:
        return False
    last = deployments[-1]
    return last.status == history.SUCCEEDED and last.dags_digest == plan.dags_digest() and last.pinned == versions


def _record(
    root: Path,
    config: DeployConfig,
    plan: DeployPlan,
    dag_ids: list[str],
    who: str,
    versions: dict[str, str],
    s3: Any,
) -> history.Deployment:
    commit, dirty = history.git_commit(root)
    now = history.now_utc()
    return history.Deployment(
        id=history.new_id(now),
        environment=config.environment,
        time=now.isoformat(),
        who=who,
        git_commit=commit,
        git_dirty=dirty,
        dags_digest=plan.dags_digest(),
        dags=s3sync.current_versions(s3, config.bucket, config.dags_path + "/"),
        pinned=dict(versions),
        dag_ids=list(dag_ids),
    )


def _update_and_verify(
    config: DeployConfig,
    clients: dict[str, Any],
    environment: dict[str, Any],
    versions: dict[str, str],
    dag_ids: list[str],
    record: history.Deployment,
    options: Options,
    log: Log,
) -> None:
    """Update (when the environment's pinned versions or options differ), wait, smoke-test, record either way."""
    mwaa_client = clients["mwaa"]
    request = mwaa.update_request(config, versions, environment.get("AirflowConfigurationOptions") or {})
    changes = mwaa.environment_changes(environment, request)
    try:
        log(f"==> MWAA environment {config.mwaa_environment_name} ({config.region})")
        if changes:
            for change in changes:
                log(f"  {change}")
            mwaa_client.update_environment(**request)
            log(f"  updating: components restart (polling every {config.poll_seconds:g} s)")
            mwaa.wait_until_available(mwaa_client, config, log)
        else:
            log("  same requirements, plugins, startup script and options: no restart (MWAA syncs the DAG folder)")
        if options.smoke_test:
            log("==> smoke test (Airflow's REST API through MWAA)")
            mwaa.smoke_test(mwaa_client, config, dag_ids, log)
    except DeployError as error:
        record.status, record.error = history.FAILED, str(error)
        history.append(clients["s3"], config, record)
        raise
    history.append(clients["s3"], config, record)


def rollback(config: DeployConfig, clients: dict[str, Any], options: Options, log: Log = print) -> bool:
    """Return the environment to the deployment before the running one, as recorded in the bucket."""
    s3 = clients["s3"]
    log("==> checks")
    who, environment = check_aws(config, clients, log)
    mwaa.check_updatable(environment, config)
    deployments = history.load(s3, config)
    target = history.rollback_target(deployments)
    log(f"==> rolling back {config.environment} to deployment {history.summary(target)}")
    preview = s3sync.restore_dags(s3, config, target.dags, True, log if options.dry_run else _quiet)
    request = mwaa.update_request(config, target.pinned, environment.get("AirflowConfigurationOptions") or {})
    changes = mwaa.environment_changes(environment, request)
    if options.dry_run:
        log(f"  {len(preview.uploaded)} DAG objects would be restored, {len(preview.deleted)} would be deleted")
        for change in changes:
            log(f"  would change {change}")
        return bool(preview.uploaded or preview.deleted or changes)
    confirm(config, "Rolling back", options)
    report = s3sync.restore_dags(s3, config, target.dags, False, log)
    log(f"  {len(report.uploaded)} restored, {len(report.deleted)} deleted, {report.unchanged} unchanged")
    now = history.now_utc()
    record = history.Deployment(
        id=history.new_id(now),
        environment=config.environment,
        time=now.isoformat(),
        who=who,
        git_commit=target.git_commit,
        git_dirty=target.git_dirty,
        dags_digest=target.dags_digest,
        dags=s3sync.current_versions(s3, config.bucket, config.dags_path + "/"),
        pinned=dict(target.pinned),
        dag_ids=list(target.dag_ids),
        restores=target.id,
    )
    _update_and_verify(config, clients, environment, dict(target.pinned), target.dag_ids, record, options, log)
    log(f"rolled back to {target.id}; recorded as {record.id}")
    return True


def push_secrets(root: Path, config: DeployConfig, clients: dict[str, Any], options: Options, path: Path | None) -> int:
    wanted = connections.read_connections(path or connections.connections_file(root, config.environment), config)
    who = checks.check_account(clients["sts"], config)
    print(f"Pushing {len(wanted)} connections to Secrets Manager ({config.account_id}, {who})", flush=True)
    outcome = connections.push_connections(
        clients["secretsmanager"], config, wanted, options.dry_run, lambda line: print(line, flush=True)
    )
    counts = {state: list(outcome.values()).count(state) for state in ("created", "updated", "unchanged")}
    would = "would be " if options.dry_run else ""
    print(", ".join(f"{count} {would if state != 'unchanged' else ''}{state}" for state, count in counts.items()))
    return 0


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="deploy.sh",
        description="Deploy medalflow to an AWS MWAA environment (settings: deploy/<env>.env; docs/deploy.md).",
        usage="deploy.sh [options] dev|hom|prod\n       deploy.sh secrets [options] dev|hom|prod",
    )
    parser.add_argument("target", nargs="+", metavar="[secrets] ENVIRONMENT")
    parser.add_argument("--dry-run", action="store_true", help="check, read AWS, print every change; write none")
    parser.add_argument("--rollback", action="store_true", help="return to the previous recorded deployment")
    parser.add_argument("--yes", action="store_true", help="no confirmation prompt for prod (CI)")
    parser.add_argument("--config", type=Path, help="settings file instead of deploy/<environment>.env")
    parser.add_argument("--connections", type=Path, help="for `secrets`: instead of deploy/connections.<env>.yml")
    parser.add_argument("--project-root", type=Path, default=PROJECT_ROOT, help="the git checkout to deploy")
    parser.add_argument("--poll-seconds", type=float, help="override MWAA_UPDATE_POLL_SECONDS")
    parser.add_argument("--timeout-seconds", type=float, help="override MWAA_UPDATE_TIMEOUT_SECONDS")
    parser.add_argument(
        "--upload-only", action="store_true", help="checks and uploads only, before the environment exists"
    )
    parser.add_argument("--skip-smoke-test", action="store_true", help="do not ask Airflow for its DAGs afterwards")
    parser.add_argument("--render-startup-script", action="store_true", help="print the rendered startup script")
    options = parser.parse_intermixed_args(argv)
    command, *rest = options.target
    if command == "secrets":
        options.command, options.target = "secrets", rest
    else:
        options.command, options.target = "deploy", options.target
    if len(options.target) != 1 or options.target[0] not in ENVIRONMENTS:
        parser.error(f"expected one environment: {', '.join(ENVIRONMENTS)}")
    options.environment = options.target[0]
    return options


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    from botocore.exceptions import BotoCoreError, ClientError

    def log(line: str) -> None:
        print(line, flush=True)

    root = arguments.project_root.resolve()
    options = Options(
        dry_run=arguments.dry_run,
        assume_yes=arguments.yes,
        smoke_test=not arguments.skip_smoke_test,
        upload_only=arguments.upload_only,
    )
    try:
        settings_file = arguments.config or root / "deploy" / f"{arguments.environment}.env"
        config = load_config(arguments.environment, settings_file)
        overrides = {"poll_seconds": arguments.poll_seconds, "timeout_seconds": arguments.timeout_seconds}
        config = DeployConfig(**{**config.__dict__, **{k: v for k, v in overrides.items() if v is not None}})
        if arguments.render_startup_script:
            sys.stdout.write(build_plan(root, config, manifest=b"{}").startup_script.body.decode())
            return 0
        if arguments.command == "deploy" and not options.dry_run:
            confirm_possible(config, options, "Rolling back" if arguments.rollback else "Deploying to")
        clients = mwaa.aws_clients(config.region)
        if arguments.command == "secrets":
            return push_secrets(root, config, clients, options, arguments.connections)
        prefix = f"s3://{config.bucket}/{config.prefix}" if config.prefix else f"s3://{config.bucket}"
        if arguments.rollback:
            log(f"Rolling back {config.environment}: {prefix}, MWAA {config.mwaa_environment_name}")
            rollback(config, clients, options, log)
        else:
            log(f"Deploying to {config.environment}: {prefix}, MWAA {config.mwaa_environment_name}")
            log("==> checks")
            plan = build_plan(root, config, log)
            checks.check_startup_script(plan, config)
            checks.check_manifest_target(plan, root, config)
            checks.check_requirements(root, plan, log)
            dag_ids = checks.check_dag_bag(root, plan, config, log)
            checks.remove_stale_caches(root, config.environment)
            deploy(root, config, plan, dag_ids, clients, options, log)
    except DeployError as error:
        print(f"deploy: error: {error}", file=sys.stderr)
        return 1
    except (BotoCoreError, ClientError) as error:  # credentials, network, permissions: AWS's message says which
        print(f"deploy: AWS error: {error}", file=sys.stderr)
        return 1
    log("dry run: nothing was written" if options.dry_run else "done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
