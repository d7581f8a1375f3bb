#!/usr/bin/env bash
# Prints the path of a Python 3.12 interpreter, the version MWAA runs Airflow 3.3.1 on.
# Looks in order at $PYTHON312, uv's managed interpreters, pyenv's versions and the PATH; never downloads one.
set -euo pipefail

is_python312() {
  [ -x "$1" ] && "$1" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 12) else 1)' 2>/dev/null
}

candidates=()
if [ -n "${PYTHON312:-}" ]; then candidates+=("$PYTHON312"); fi
if command -v uv >/dev/null 2>&1; then
  found=$(UV_PYTHON_DOWNLOADS=never uv python find 3.12 2>/dev/null || true)
  if [ -n "$found" ]; then candidates+=("$found"); fi
fi
if command -v pyenv >/dev/null 2>&1; then
  pyenv_root=$(pyenv root)
  while read -r version; do
    candidates+=("$pyenv_root/versions/$version/bin/python")
  done < <(pyenv versions --bare 2>/dev/null | grep -E '^3\.12(\.[0-9]+)?$' | sort -t. -k3,3nr)
fi
for name in python3.12 python3 python; do
  if command -v "$name" >/dev/null 2>&1; then candidates+=("$(command -v "$name")"); fi
done

for candidate in "${candidates[@]}"; do
  if is_python312 "$candidate"; then
    echo "$candidate"
    exit 0
  fi
done

cat >&2 <<'MSG'
error: no Python 3.12 interpreter found.
medalflow pins Airflow 3.3.1 on Python 3.12, the version AWS MWAA runs, so that what passes here installs there.
Looked at: $PYTHON312, `uv python find 3.12`, `pyenv versions`, and python3.12 / python3 / python on the PATH.
Install one (for example `pyenv install 3.12`) or point PYTHON312 at an existing interpreter, then run make again.
MSG
exit 1
