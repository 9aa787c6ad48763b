#!/usr/bin/env bash
# Stop the test cluster of scripts/slurm-up.sh: cancel all jobs, then stop slurmd, slurmctld and
# munged by their pid files (TERM, then KILL after a deadline). Packages stay installed; state
# and logs stay in <services dir>/slurm/. Nothing running is fine.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=services-lib.sh
source "$(dirname "$0")/services-lib.sh"

require_root
D=$SERVICES_DIR/slurm
export SLURM_CONF=$D/slurm.conf
# Tests skip when this is absent: remove it first, as the cluster is going away.
rm -f "$SERVICES_DIR/slurm.env"

live_jobs() { squeue -h -t PD,R,CG,CF,S,RQ,RS,RH,SI,SO,ST -o %A 2>/dev/null | sort -u; }
no_live_jobs() { [[ -z $(live_jobs) ]]; }
if pid_alive "$D/run/slurmctld.pid" && [[ -f $SLURM_CONF ]]; then
  jobs=$(live_jobs || true)
  if [[ -n $jobs ]]; then
    log "cancelling $(wc -w <<<"$jobs") job(s)"
    # shellcheck disable=SC2086
    scancel $jobs 2>/dev/null || true
    if pid_alive "$D/run/slurmd.pid"; then
      # KillWait=5: jobs that ignore SIGTERM are killed after 5 s.
      wait_for 30 "cancelled jobs to end" no_live_jobs || log "jobs left: $(live_jobs | tr '\n' ' ')"
    fi
  fi
fi

stop_pidfile slurmd "$D/run/slurmd.pid" 20
stop_pidfile slurmctld "$D/run/slurmctld.pid" 20
stop_pidfile munged "$SERVICES_DIR/munge/munged.pid" 10
log "slurm is down"
