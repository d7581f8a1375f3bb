#!/usr/bin/env bash
# Deploys medalflow to an AWS MWAA environment. Settings per environment in deploy/<env>.env; docs/deploy.md.
#
#   ./deploy.sh [--dry-run] [--config FILE] dev|hom|prod
#
# Safe to rerun: unchanged files are not uploaded again and the environment is updated (restarted) only when its
# requirements, plugins, startup script or Airflow options change. --dry-run reads S3 and MWAA and writes nothing.
# The logic is in tools/medalflow_deploy/deploy.py (boto3, from the Airflow virtualenv); AWS credentials come from the usual
# chain (AWS_PROFILE, environment, SSO...), and AWS_ENDPOINT_URL points it at an emulator.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

case "${1:-}" in
  "" | -h | --help)
    echo "usage: ./deploy.sh [--dry-run] [--config FILE] dev|hom|prod" >&2
    [ -n "${1:-}" ] && exit 0 || exit 2
    ;;
esac

# Builds both virtualenvs when missing and dbt's manifest.json when a model changed; a no-op otherwise.
make manifest
PYTHONPATH=dags:tools exec .venv/airflow/bin/python -m medalflow_deploy "$@"
