#!/usr/bin/env bash
# MWAA startup script: builds dbt's own virtualenv with scripts/build_dbt_venv.sh and exports the MEDALFLOW_* settings
# to the Airflow processes of one MWAA environment. docs/deploy.md explains it.
#
# deploy.py uploads this file with the block between the two "medalflow:" markers filled in from deploy/<env>.env:
# the settings to export, and copies of scripts/build_dbt_venv.sh and requirements/lock/dbt.lock.txt. MWAA fetches
# only this one object before a component starts, and the DAG sync is not guaranteed to have run by then, so what the
# script needs travels inside it. See the rendered copy with: .venv/airflow/bin/python -m medalflow_deploy dev
# --render-startup-script (from dags/ and tools/ on PYTHONPATH).
#
# How MWAA runs it (aws/amazon-mwaa-docker-images, images/airflow/3.3.1): on every component (MWAA_AIRFLOW_COMPONENT
# is scheduler, worker, webserver or hybrid), before requirements.txt is installed and before Airflow starts, with a
# limit of 5 minutes. It is *sourced* by a bash wrapper that then saves the environment for the Airflow processes: so
# exported variables reach Airflow, and this file must not `set -e` or `set -u` (that would leak into the wrapper, and
# an error exit would skip the saving of the environment). The work happens in a function instead.

# >>> medalflow: rendered by deploy.py >>>
# Unrendered: no settings and no dbt lock here. deploy.sh uploads the rendered copy.
# <<< medalflow: rendered by deploy.py <<<

medalflow_startup() {
  local airflow_home=${AIRFLOW_HOME:-/usr/local/airflow}
  local dags_dir=$airflow_home/dags
  local venv_dir=$airflow_home/dbt_venv
  local component=${MWAA_AIRFLOW_COMPONENT:-unknown}
  echo "medalflow startup: environment ${medalflow_environment:-unrendered}, component $component"

  # MWAA syncs <prefix>/dags to $dags_dir: the dbt project and profiles travel there (settings.py's defaults assume
  # the repository's layout instead).
  export MEDALFLOW_DBT_PROJECT_DIR=$dags_dir/dbt_project
  export MEDALFLOW_DBT_PROFILES_DIR=$dags_dir/profiles
  export MEDALFLOW_DBT_EXECUTABLE=$venv_dir/bin/dbt
  export DBT_SEND_ANONYMOUS_USAGE_STATS=False
  export DO_NOT_TRACK=1
  export AIRFLOW__COSMOS__ENABLE_TELEMETRY=False

  if [ "$component" = webserver ]; then
    # Airflow 3's API server parses no DAG and runs no task: no dbt needed, and its start stays fast.
    echo "medalflow startup: the API server runs no dbt; dbt's virtualenv is not built here"
    return 0
  fi
  if ! declare -F medalflow_write_dbt_inputs >/dev/null; then
    echo "medalflow startup: ERROR: this is the unrendered template; deploy.sh uploads the rendered copy" >&2
    return 1
  fi

  local inputs status=0
  inputs=$(mktemp -d) || return 1
  medalflow_write_dbt_inputs "$inputs" || return 1
  local uv=${UV:-$(command -v uv || true)}
  if [ -z "$uv" ] && [ ! -x "$venv_dir/bin/dbt" ] && [ -n "${medalflow_uv_version:-}" ]; then
    # A fresh container: uv installs dbt's ~90 packages several times faster than pip, well within the 5 minutes.
    # Without it (no PyPI access for pip either, say) build_dbt_venv.sh falls back to pip.
    if python3 -m pip install --quiet --disable-pip-version-check --target "$inputs/uv" "uv==$medalflow_uv_version"; then
      uv=$inputs/uv/bin/uv
    else
      echo "medalflow startup: could not install uv $medalflow_uv_version; building with pip"
    fi
  fi
  # build_dbt_venv.sh does nothing when the venv was built from this same lock (e.g. a restarted component).
  UV=$uv PYTHON=${PYTHON:-python3} UV_PYTHON_DOWNLOADS=never \
    bash "$inputs/build_dbt_venv.sh" "$venv_dir" "$inputs/dbt.lock.txt" || status=$?
  rm -rf "$inputs"
  return "$status"
}

# A failed build must not stop the component: Airflow still starts (the settings are exported above), and the dbt
# tasks fail with dbt's path in their error, next to this message in the startup log.
if ! medalflow_startup; then
  echo "medalflow startup: ERROR: dbt's virtualenv is not ready; dbt tasks will fail on this component" >&2
fi
unset -f medalflow_startup medalflow_write_dbt_inputs
