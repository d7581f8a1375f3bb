#!/usr/bin/env bash
# Builds dbt's own virtualenv from pinned requirement files; the one script local setup, docker compose and the MWAA
# startup script all call. dbt lives apart from Airflow because it conflicts with MWAA's constraints (pathspec).
# Safe to rerun: when the requirement files have not changed since the last build, it does nothing.
#
#   build_dbt_venv.sh VENV_DIR REQUIREMENTS_FILE [REQUIREMENTS_FILE ...]
#
# Uses uv when $UV (or `uv` on the PATH) is there, pip otherwise (MWAA's workers have pip). $PYTHON picks the interpreter.
set -euo pipefail

if [ "$#" -lt 2 ]; then
  echo "usage: $0 VENV_DIR REQUIREMENTS_FILE [REQUIREMENTS_FILE ...]" >&2
  exit 2
fi
venv_dir=$1
shift
for requirements in "$@"; do
  [ -f "$requirements" ] || { echo "error: requirements file not found: $requirements" >&2; exit 2; }
done

python=${PYTHON:-python3}
uv=${UV:-$(command -v uv || true)}
stamp="$venv_dir/.medalflow-requirements.sha256"
digest=$(cat "$@" | sha256sum | cut -d' ' -f1)

if [ -x "$venv_dir/bin/dbt" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$digest" ]; then
  echo "dbt virtualenv $venv_dir is up to date"
  exit 0
fi

echo "building dbt virtualenv in $venv_dir from $*"
if [ -n "$uv" ]; then
  "$uv" venv --quiet --allow-existing --python "$python" "$venv_dir"
  "$uv" pip sync --quiet --python "$venv_dir/bin/python" "$@"
else
  "$python" -m venv "$venv_dir"
  for requirements in "$@"; do
    "$venv_dir/bin/pip" install --quiet --no-cache-dir -r "$requirements"
  done
fi
"$venv_dir/bin/dbt" --version >/dev/null
echo "$digest" > "$stamp"
echo "dbt virtualenv ready: $venv_dir/bin/dbt"
