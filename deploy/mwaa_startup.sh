#!/usr/bin/env bash
# MWAA startup script: builds dbt's own virtualenv with scripts/build_dbt_venv.sh and exports the MEDALFLOW_* settings
# to the Airflow processes of one MWAA environment. docs/deploy.md explains it.
#
# deploy.py uploads this file with the block between the two "medalflow:" markers filled in from deploy/<env>.env:
# the settings to export, and copies of scripts/build_dbt_venv.sh and requirements/lock/dbt.lock.txt. MWAA fetches
# only this one object before a component starts, and the DAG sync is not guaranteed to have run by then, so what the
# script needs travels inside it. See the rendered copy with: ./deploy.sh --render-startup-script dev
#
# How MWAA runs it (aws/amazon-mwaa-docker-images, images/airflow/3.3.1): on every component (MWAA_AIRFLOW_COMPONENT
# is scheduler, worker, webserver or hybrid), before requirements.txt is installed and before Airflow starts, with a
# limit of 5 minutes. It is *sourced* by a bash wrapper that then saves the environment for the Airflow processes: so
# exported variables reach Airflow, and this file must not `set -e` or `set -u` (that would leak into the wrapper, and
# an error exit would skip the saving of the environment). The work happens in a function instead.
#
# The dbt build has a budget of its own (STARTUP_DBT_BUILD_BUDGET_SECONDS, 180 s by default): past it, or when the
# build fails, the half-built virtualenv is removed, a marker file says what failed, and the component starts anyway;
# medalflow.settings reads the marker, so dbt tasks fail with that reason (and deploy.sh's smoke test reports it).

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
  # Written when dbt's virtualenv could not be built, saying why; medalflow.settings reads it, so a dbt task (and
  # the medallion DAG) fails with that reason instead of "no such file".
  export MEDALFLOW_DBT_STARTUP_MARKER=$airflow_home/medalflow_dbt_startup_failed.txt
  export DBT_SEND_ANONYMOUS_USAGE_STATS=False
  export DO_NOT_TRACK=1
  export AIRFLOW__COSMOS__ENABLE_TELEMETRY=False
  export AIRFLOW__USAGE_DATA_COLLECTION__ENABLED=False
  rm -f "$MEDALFLOW_DBT_STARTUP_MARKER"

  if [ "$component" = webserver ]; then
    # Airflow 3's API server parses no DAG and runs no task: no dbt needed, and its start stays fast.
    echo "medalflow startup: the API server runs no dbt; dbt's virtualenv is not built here"
    return 0
  fi
  if ! declare -F medalflow_write_dbt_inputs >/dev/null; then
    medalflow_dbt_failed "this is the unrendered template of the startup script; deploy.sh uploads the rendered copy"
    return 1
  fi

  # The build gets a budget of its own, well inside MWAA's 5 minutes for the whole script: past it, the build is
  # stopped and the component starts without dbt rather than being killed with the script.
  local budget=${medalflow_dbt_build_budget:-180} started=$SECONDS
  local inputs status=0
  inputs=$(mktemp -d) || { medalflow_dbt_failed "mktemp failed"; return 1; }
  medalflow_write_dbt_inputs "$inputs" || { medalflow_dbt_failed "could not write the build inputs"; return 1; }
  local uv=${UV:-$(command -v uv || true)}
  if [ -z "$uv" ] && [ ! -x "$venv_dir/bin/dbt" ] && [ -n "${medalflow_uv_version:-}" ]; then
    # A fresh container: uv installs dbt's ~90 packages several times faster than pip, well within the budget.
    # Without it (no PyPI access for pip either, say) build_dbt_venv.sh falls back to pip.
    if medalflow_bounded "$budget" python3 -m pip install --quiet --disable-pip-version-check \
      --target "$inputs/uv" "uv==$medalflow_uv_version"; then
      uv=$inputs/uv/bin/uv
    else
      echo "medalflow startup: could not install uv $medalflow_uv_version; building with pip"
    fi
  fi
  local remaining=$((budget - (SECONDS - started)))
  [ "$remaining" -gt 0 ] || remaining=1
  # build_dbt_venv.sh does nothing when the venv was built from this same lock (e.g. a restarted component).
  medalflow_bounded "$remaining" env UV="$uv" PYTHON="${PYTHON:-python3}" UV_PYTHON_DOWNLOADS=never \
    bash "$inputs/build_dbt_venv.sh" "$venv_dir" "$inputs/dbt.lock.txt" || status=$?
  rm -rf "$inputs"
  if [ "$status" -ne 0 ]; then
    # A half-built virtualenv would look usable: remove it, so the next start builds it again from scratch.
    rm -rf "$venv_dir"
    if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
      medalflow_dbt_failed "building dbt's virtualenv took longer than its budget of $budget s (STARTUP_DBT_BUILD_BUDGET_SECONDS) and was stopped"
    else
      medalflow_dbt_failed "building dbt's virtualenv failed (exit $status); the lines above in this startup log say why"
    fi
  fi
  return "$status"
}

# Runs a command for at most $1 seconds (then TERM, and KILL 5 s later); exit 124 (or 137) when it ran out of time.
medalflow_bounded() {
  local seconds=$1
  shift
  if command -v timeout >/dev/null; then
    timeout --kill-after=5 "$seconds" "$@"
  else
    echo "medalflow startup: no \`timeout\` command: not bounded" >&2
    "$@"
  fi
}

medalflow_dbt_failed() {
  echo "medalflow startup: ERROR: $1" >&2
  printf '%s\n' "on component ${MWAA_AIRFLOW_COMPONENT:-unknown} at $(date -u +%FT%TZ): $1" \
    > "${MEDALFLOW_DBT_STARTUP_MARKER:-/dev/null}" 2>/dev/null || true
}

# A failed build must not stop the component: Airflow still starts (the settings are exported above), and the dbt
# tasks fail with the marker's reason. Nothing here exits: the script is sourced by MWAA's wrapper.
if ! medalflow_startup; then
  echo "medalflow startup: ERROR: dbt's virtualenv is not ready; dbt tasks will fail on this component" >&2
fi
unset -f medalflow_startup medalflow_write_dbt_inputs medalflow_dbt_failed medalflow_bounded
