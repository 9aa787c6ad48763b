#!/usr/bin/env bash
# The command of `make bench`: bench/run.py with its arguments (make bench BENCH_ARGS="--quick").
# As root it first starts the services (scripts/services-up.sh: the single-node Slurm cluster
# the `slurm` workload submits to, and the sshd of the tests), like scripts/run-tests.sh, and
# leaves them running afterwards: a second `make bench` or `make test` then finds them up, and
# stopping them could cut off whoever else uses the cluster. Stop them with
# scripts/services-down.sh. MaxArraySize is $SLURM_MAX_ARRAY_SIZE (default 1001), applied by
# services-up.sh (a different value restarts the cluster). Not root: nothing is started, and the
# `slurm` workload runs only if a cluster is already up (else it says "skipped").
#
# What is measured is DryPipe as users install it: a wheel built from this checkout, installed
# with pip into a fresh venv (made under $BENCH_VENV_DIR, default bench/results/wheel-venv,
# rebuilt every time). BENCH_INSTALL=editable measures the dev install of $BIN instead.
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

if [[ ${BENCH_INSTALL:-wheel} == editable ]]; then
  exec "$BIN/python" bench/run.py "$@"
fi
venv=${BENCH_VENV_DIR:-bench/results/wheel-venv}
venv=$(realpath -m "$venv")
# The previous venv is moved aside and deleted after the measurements: deleting its thousands of
# files first would slow the inode creations of the first workloads (ext4 skips recently freed
# inodes for a while), which a DryPipe run does ten per task and its floor one.
old_venv=
if [[ -e $venv ]]; then
  old_venv="$venv.old.$$"
  mv "$venv" "$old_venv" || exit 2
fi
mkdir -p "$venv" || exit 2
echo "run-bench: building a wheel and installing it in a fresh venv ($venv)" >&2
rm -rf build  # setuptools' staging dir: what an earlier build left there would go in the wheel
"$BIN/python" -m pip wheel --no-deps --disable-pip-version-check -q . -w "$venv/wheel" >&2 \
  || { echo "run-bench: building the wheel failed" >&2; exit 2; }
"${PYTHON:-python3}" -m venv "$venv/venv" || exit 2
"$venv/venv/bin/python" -m pip install -q --disable-pip-version-check "$venv"/wheel/*.whl 2>&1 \
  | grep -v -e '^WARNING: Location' -e 'is ignored' >&2
[[ ${PIPESTATUS[0]} == 0 ]] || { echo "run-bench: installing the wheel failed" >&2; exit 2; }
rm -rf build  # what pip wheel left in the checkout
# Building the wheel deleted ~1,000 files (pip's temporary build environment): on ext4 without
# a journal, bench/run.py waits for that to stop slowing down file creation (bench/settle.py).
DRYPIPE_BENCH_DELETED_AT=$(date +%s) DRYPIPE_BENCH_FRESH_VENV="$venv/venv" "$venv/venv/bin/python" bench/run.py "$@"
status=$?
rm -rf "$venv".old.*  # (this run's, and any an interrupted run left)
mkdir -p bench/results && date +%s > bench/results/deleted-at  # (for the next bench: bench/settle.py)
exit $status
