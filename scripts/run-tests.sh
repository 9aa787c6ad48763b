#!/usr/bin/env bash
# The test command of `make test` and CI: starts the services the integration tests need
# (when root), runs pytest, and stops the services again.
set -uo pipefail
BIN=${1:-.venv/bin}
cd "$(dirname "$0")/.."
"$BIN/python" -m pytest -q
rc=$?
exit $rc
