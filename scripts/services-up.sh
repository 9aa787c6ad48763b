#!/usr/bin/env bash
# Start every service the integration tests need: the single-node Slurm cluster
# (scripts/slurm-up.sh) and the private sshd (scripts/sshd-up.sh). Idempotent; a few seconds
# when the packages are already installed. Prints both client envs on stdout (also in
# <services dir>/slurm.env and ssh.env) and timings on stderr. Needs root.
set -euo pipefail
here=$(dirname "$0")
source "$here/services-lib.sh"

start=$(date +%s.%N)
for service in slurm sshd; do
  t0=$(date +%s.%N)
  "$here/$service-up.sh"
  log "$service up in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}') s"
done
log "all services up in $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}') s"
