#!/usr/bin/env bash
# Set up a fresh Debian machine for DryPipe: system packages (when root), the venv, the
# project installed in it (editable, with test extras).
# Usage: scripts/bootstrap.sh [PYTHON] [VENV]
set -euo pipefail
PYTHON=${1:-python3}
VENV=${2:-.venv}
cd "$(dirname "$0")/.."

need=()
command -v "$PYTHON" >/dev/null || need+=(python3)
if command -v "$PYTHON" >/dev/null && ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
  need+=(python3-venv)
fi
if ((${#need[@]})); then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    echo "bootstrap: apt-get install ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "bootstrap: missing ${need[*]} (install them, or run as root to let this script do it)" >&2
  fi
fi

if [[ ! -x $VENV/bin/python ]]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -e '.[test]' 2>&1 \
  | grep -v -e '^WARNING: Location' -e 'is ignored' || true
"$VENV/bin/python" -c 'import drypipe, sqlalchemy, alembic, click, paramiko' \
  || { echo "bootstrap: installing drypipe into $VENV failed" >&2; exit 1; }
