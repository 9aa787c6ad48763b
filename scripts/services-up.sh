#!/usr/bin/env bash
# Start every service the integration tests need: the single-node Slurm cluster
# (scripts/slurm-up.sh) and the private sshd (scripts/sshd-up.sh). Idempotent; a few seconds
# when the packages are already installed. Prints both client envs on stdout (also in
# <services dir>/slurm.env and ssh.env) and timings on stderr. Needs root.
set -euo pipefail
here=$(dirname "$0")
# shellcheck source-path=SCRIPTDIR source=services-lib.sh
source "$here/services-lib.sh"

start=$(date +%s.%N)
require_root
mkdir_services_dir
# One apt-get update and install for both services, when anything is missing.
ensure_packages "${SLURM_PACKAGES[@]}" "${SSHD_PACKAGES[@]}"
log "packages checked in $(elapsed "$start") s"
for service in slurm sshd; do
  t0=$(date +%s.%N)
  "$here/$service-up.sh"
  log "$service up in $(elapsed "$t0") s"
done
log "all services up in $(elapsed "$start") s"
