#!/usr/bin/env bash
# The command of `make bench`: bench/run.py with its arguments (make bench BENCH_ARGS="--quick").
# As root it first starts the services (scripts/services-up.sh: the single-node Slurm cluster
# the `slurm` workload submits to, and the sshd of the tests), like scripts/run-tests.sh, and
# leaves them running afterwards: a second `make bench` or `make test` then finds them up, and
# stopping them could cut off whoever else uses the cluster. Stop them with
# scripts/services-down.sh. MaxArraySize is $SLURM_MAX_ARRAY_SIZE (default 1001), applied by
# services-up.sh (a different value restarts the cluster). Not root: nothing is started, and the
# `slurm` workload runs only if a cluster is already up (else it says "skipped").
set -uo pipefail
BIN=${1:-.venv/bin}
shift $(($# > 0 ? 1 : 0))
cd "$(dirname "$0")/.." || exit 2
export DRYPIPE_TEST_SERVICES=${DRYPIPE_TEST_SERVICES:-/var/tmp/drypipe-test-services}

if [[ $(id -u) == 0 ]]; then
  if ! scripts/services-up.sh >/dev/null; then
    echo "run-bench: starting Slurm and sshd failed (see above); the slurm workload may be skipped" >&2
  fi
else
  echo "run-bench: not root: Slurm is not started (the slurm workload runs only if it is up)" >&2
fi

exec "$BIN/python" bench/run.py "$@"
