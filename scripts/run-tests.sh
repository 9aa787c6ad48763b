#!/usr/bin/env bash
# The test command of `make test` and CI. As root it first installs and starts the services
# the integration tests talk to (a single-node Slurm, a private sshd on loopback), and stops
# them again at the end. Their files live under /var/tmp so that the slurm, munge and
# drypipe-remote users can reach them wherever the repository was cloned.
set -uo pipefail
BIN=${1:-.venv/bin}
cd "$(dirname "$0")/.."
export DRYPIPE_TEST_SERVICES=${DRYPIPE_TEST_SERVICES:-/var/tmp/drypipe-test-services}
# a small MaxArraySize, so that tests of 200 Slurm tasks exercise the chunking of arrays
export SLURM_MAX_ARRAY_SIZE=${SLURM_MAX_ARRAY_SIZE:-100}

if [[ $(id -u) == 0 ]]; then
  # headless Chromium opens the HTML report of `drypipe report` (tests/test_report_html.py)
  if ! command -v chromium >/dev/null; then
    echo "run-tests: apt-get install chromium" >&2
    if ! { export DEBIAN_FRONTEND=noninteractive; apt-get update -qq >/dev/null &&
           apt-get install -y -qq --no-install-recommends chromium >/dev/null; }; then
      echo "run-tests: installing chromium failed (see above)" >&2
      exit 1
    fi
  fi
  if ! scripts/services-up.sh >/dev/null; then
    echo "run-tests: starting Slurm and sshd failed (see above)" >&2
    exit 1
  fi
  trap 'scripts/services-down.sh >/dev/null 2>&1' EXIT
  # the services are up: a test that does not find them fails instead of being skipped
  export DRYPIPE_REQUIRE_SERVICES=1
else
  echo "run-tests: not root: Slurm and sshd are not started; their tests will be skipped" >&2
fi

"$BIN/python" -m pytest -q -p no:cacheprovider
