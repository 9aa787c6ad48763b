#!/usr/bin/env bash
# Stop the services of scripts/services-up.sh (sshd, then Slurm). Packages, users, keys and
# logs stay. Nothing running is fine. Needs root.
set -euo pipefail
here=$(dirname "$0")
# shellcheck source-path=SCRIPTDIR source=services-lib.sh
source "$here/services-lib.sh"

start=$(date +%s.%N)
rc=0
# Try both even if one fails.
"$here/sshd-down.sh" || rc=$?
"$here/slurm-down.sh" || rc=$?
log "all services down in $(elapsed "$start") s"
exit $rc
