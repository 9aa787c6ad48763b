#!/usr/bin/env bash
# Stop the services of scripts/services-up.sh (sshd, then Slurm). Packages, users, keys and
# logs stay. Nothing running is fine. Needs root.
set -euo pipefail
here=$(dirname "$0")
source "$here/services-lib.sh"

start=$(date +%s.%N)
rc=0
# Try both even if one fails.
"$here/sshd-down.sh" || rc=$?
"$here/slurm-down.sh" || rc=$?
log "all services down in $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}') s"
exit $rc
