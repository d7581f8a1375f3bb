#!/usr/bin/env bash
# Deploys medalflow to an AWS MWAA environment. Settings per environment in deploy/<env>.env; docs/deploy.md.
#
#   ./deploy.sh [--dry-run] [--yes] [--config FILE] dev|hom|prod     deploy what git tracks of the runtime
#   ./deploy.sh --rollback [--dry-run] [--yes] dev|hom|prod          back to the previous recorded deployment
#   ./deploy.sh secrets [--dry-run] dev|hom|prod                     push deploy/connections.<env>.yml
#
# Nothing is written before every check passed (account, settings, DAG imports, requirements, startup script,
# environment state); then the uploads, the environment update (waited for), a smoke test and a record in the
# bucket. Safe to rerun: unchanged files are not uploaded again and the environment is updated (restarted) only when
# what it runs differs. prod asks for a confirmation (--yes in CI). --dry-run prints every change and writes nothing.
# The logic is in tools/medalflow_deploy/ (boto3, from the Airflow virtualenv); AWS credentials come from the usual
# chain (AWS_PROFILE, environment, SSO...), and AWS_ENDPOINT_URL points it at an emulator.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

case "${1:-}" in
  "" | -h | --help)
    sed -n '4,6p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,3\}/usage: /' >&2
    [ -n "${1:-}" ] && exit 0 || exit 2
    ;;
esac

# Builds both virtualenvs when missing (a no-op otherwise): dbt builds the environment's manifest, Airflow checks
# the DAGs.
make --no-print-directory install
PYTHONPATH=dags:tools exec .venv/airflow/bin/python -m medalflow_deploy "$@"
