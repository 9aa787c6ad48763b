#!/usr/bin/env bash
# Start a real single-node Slurm cluster (munged, slurmctld, slurmd) for the integration tests.
# Installs the Debian packages when missing; config, state, spool, pid files and logs all live
# in <services dir>/slurm/ (services dir: $DRYPIPE_TEST_SERVICES, default <repo>/.test-services).
# Idempotent: when the cluster already runs with the same config it only checks it.
# Prints the env a client needs (SLURM_CONF=...) and writes it to <services dir>/slurm.env.
# Env: SLURM_MAX_ARRAY_SIZE (default 1001). Needs root. Stop with scripts/slurm-down.sh.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=services-lib.sh
source "$(dirname "$0")/services-lib.sh"

require_root
mkdir_services_dir
D=$SERVICES_DIR/slurm
[[ $D != *[[:space:]]* ]] || die "slurm.conf can't hold paths with spaces: $D"
MAX_ARRAY_SIZE=${SLURM_MAX_ARRAY_SIZE:-1001}
[[ $MAX_ARRAY_SIZE =~ ^[0-9]+$ ]] || die "SLURM_MAX_ARRAY_SIZE must be a number, not '$MAX_ARRAY_SIZE'"

ENV_FILE=$SERVICES_DIR/slurm.env
# On any failure, remove the env file: tests then skip instead of using a broken cluster.
cleanup() { local rc=$?; ((rc == 0)) || rm -f "$ENV_FILE"; return $rc; }
trap cleanup EXIT

ensure_packages "${SLURM_PACKAGES[@]}"

# slurmd finds its NodeName line by the short host name, and slurmctld resolves it.
HOST=$(hostname -s)
if ! getent hosts "$HOST" >/dev/null; then
  log "adding '127.0.0.1 $HOST' to /etc/hosts"
  echo "127.0.0.1 $HOST" >>/etc/hosts
fi

# ---- the private dir and config ----
mkdir -p "$D"/{state,spool,log,run,jobtmp}
chmod 755 "$D" "$D/spool" "$D/log" "$D/run"
chown slurm:slurm "$D/state" "$D/log" "$D/run"
chmod 700 "$D/state"
# Jobs may run as any user: each gets its own 700 dir in here.
chmod 1777 "$D/jobtmp"

CPUS=$(nproc)
MEM_MB=$(awk '/^MemTotal:/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
# proctrack/cgroup kills what a job leaves behind (linuxproc leaks background children), but
# needs the cgroup v1 freezer; without it fall back to linuxproc.
if awk '$2 == "/sys/fs/cgroup/freezer" && $3 == "cgroup" {found=1} END {exit !found}' /proc/mounts; then
  PROCTRACK=proctrack/cgroup
else
  PROCTRACK=proctrack/linuxproc
fi
# task/cgroup with ConstrainRAMSpace: a job that uses more than its --mem is killed and ends
# OUT_OF_MEMORY, as on real clusters (DryPipe's retries with retry_scale are tested on it); it
# needs the cgroup v1 memory controller mounted.
if awk '$2 == "/sys/fs/cgroup/memory" && $3 == "cgroup" {found=1} END {exit !found}' /proc/mounts; then
  TASKPLUGIN=task/cgroup
else
  TASKPLUGIN=task/none
fi

cat >"$D/slurm.conf.new" <<EOF
# Written by scripts/slurm-up.sh (rewritten on each run): single-node cluster for tests.
ClusterName=drypipe-test
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
MailProg=/bin/true
ProctrackType=$PROCTRACK
TaskPlugin=$TASKPLUGIN
SelectType=select/cons_tres
# Memory is allocated (and, with task/cgroup, enforced): --mem is a limit, 1 GB per CPU by default.
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
# Schedule as soon as a job is submitted or ends, instead of in 3 s cycles.
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=100000,sched_interval=2,bf_interval=1,default_queue_depth=1000
ReturnToService=2
MaxArraySize=$MAX_ARRAY_SIZE
MaxJobCount=20000
# Finished jobs stay visible to squeue/scontrol this long: there is no slurmdbd/sacct.
MinJobAge=600
# Seconds between SIGTERM and SIGKILL at scancel or time limit (default 30).
KillWait=5
InactiveLimit=0
OverTimeLimit=0
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/run/slurmctld.pid
SlurmdPidFile=$D/run/slurmd.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# SLURM_TMPDIR per job, as on Compute Canada's clusters: made by TaskProlog, removed by Epilog.
TaskProlog=$D/task-prolog.sh
Epilog=$D/epilog.sh
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF

cat >"$D/cgroup.conf.new" <<EOF
# Written by scripts/slurm-up.sh: the v1 hierarchies are already mounted here.
CgroupPlugin=cgroup/v1
CgroupAutomount=no
ConstrainRAMSpace=yes
ConstrainSwapSpace=yes
AllowedSwapSpace=0
EOF

# TaskProlog runs as the job's user before each task; what it prints as `export X=Y` is set in
# the task's environment.
cat >"$D/task-prolog.sh.new" <<EOF
#!/bin/sh
d="$D/jobtmp/\$SLURM_JOB_ID"
mkdir -p "\$d" && chmod 700 "\$d" && echo "export SLURM_TMPDIR=\$d"
exit 0
EOF

# Epilog runs as root when a job ends. A failing Epilog drains the node: always exit 0.
cat >"$D/epilog.sh.new" <<EOF
#!/bin/sh
case "\$SLURM_JOB_ID" in
  ''|*[!0-9]*) ;;
  *) rm -rf "$D/jobtmp/\$SLURM_JOB_ID" ;;
esac
exit 0
EOF

config_changed=
for f in slurm.conf cgroup.conf task-prolog.sh epilog.sh; do
  if replace_if_changed "$D/$f.new" "$D/$f"; then config_changed=1; fi
done
chmod 644 "$D/slurm.conf" "$D/cgroup.conf"
chmod 755 "$D/task-prolog.sh" "$D/epilog.sh"
export SLURM_CONF=$D/slurm.conf
# Like on a login node, the cluster's config is also found at the default path, so that users
# without SLURM_CONF in their environment (drypipe-remote, over ssh) reach the cluster too.
# Only when no real config is there.
mkdir -p /etc/slurm
if [[ ! -e /etc/slurm/slurm.conf || -L /etc/slurm/slurm.conf ]]; then
  ln -sfn "$D/slurm.conf" /etc/slurm/slurm.conf
fi

# ---- munge ----
MUNGE_DIR=$SERVICES_DIR/munge
mkdir -p "$MUNGE_DIR" /run/munge
chown munge:munge "$MUNGE_DIR" /run/munge
chmod 755 /run/munge
if [[ ! -s /etc/munge/munge.key ]]; then
  log "creating /etc/munge/munge.key"
  install -d -o munge -g munge -m 700 /etc/munge
  dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown munge:munge /etc/munge/munge.key
chmod 400 /etc/munge/munge.key
munge_works() { munge -n | unmunge >/dev/null; }
if ! munge_works 2>/dev/null; then
  log "starting munged"
  runuser -u munge -- /usr/sbin/munged --force --pid-file="$MUNGE_DIR/munged.pid" \
    --log-file="$MUNGE_DIR/munged.log" </dev/null >>"$MUNGE_DIR/munged.out" 2>&1 ||
    { tail_log "$MUNGE_DIR/munged.log"; tail_log "$MUNGE_DIR/munged.out"; die "munged did not start"; }
  wait_for 10 "munge -n | unmunge" munge_works ||
    { tail_log "$MUNGE_DIR/munged.log"; die "munged does not answer"; }
fi

# ---- slurmctld, slurmd ----
CTLD_PID=$D/run/slurmctld.pid
SLURMD_PID=$D/run/slurmd.pid
if [[ -n $config_changed ]] && { pid_alive "$CTLD_PID" || pid_alive "$SLURMD_PID"; }; then
  log "config changed: restarting slurmctld and slurmd"
  stop_pidfile slurmd "$SLURMD_PID"
  stop_pidfile slurmctld "$CTLD_PID"
fi

# daemon_failed NAME WHY: the end of its logs, and exit.
daemon_failed() {
  local name=$1
  shift
  tail_log "$D/log/$name.log"
  tail_log "$D/log/$name.out"
  die "$name $*"
}
# start_daemon NAME PIDFILE: start /usr/sbin/NAME (it daemonizes) unless it runs.
start_daemon() {
  local name=$1 pidfile=$2
  pid_alive "$pidfile" && return 0
  log "starting $name"
  rm -f "$pidfile"
  "/usr/sbin/$name" -f "$SLURM_CONF" </dev/null >>"$D/log/$name.out" 2>&1 || daemon_failed "$name" "did not start"
  wait_for 10 "$name to write its pid file" pid_alive "$pidfile" || daemon_failed "$name" "wrote no pid file"
}

start_daemon slurmctld "$CTLD_PID"
ctld_up() { scontrol ping 2>/dev/null | grep -q 'is UP'; }
# Fail fast if it exits (e.g. its port is taken).
ctld_up_or_dead() { ctld_up || ! pid_alive "$CTLD_PID"; }
if ! { wait_for 30 "scontrol ping to say UP" ctld_up_or_dead && ctld_up; }; then
  daemon_failed slurmctld "is not up ($(pid_alive "$CTLD_PID" && echo running || echo exited))"
fi

start_daemon slurmd "$SLURMD_PID"
node_state() { sinfo -h -N -n "$HOST" -o %T 2>/dev/null; }
resumed=
node_ready() {
  local state
  state=$(node_state) || return 1
  case $state in
    idle | mixed | allocated | completing) return 0 ;;
    drain*)
      # e.g. drained by an earlier run's failed kill: the config is valid now, so resume it.
      if [[ -z $resumed ]]; then
        resumed="$state ($(sinfo -h -N -n "$HOST" -o %E))"
        scontrol update nodename="$HOST" state=resume
      fi
      return 1 ;;
  esac
  return 1
}
node_ready_or_dead() { node_ready || ! pid_alive "$SLURMD_PID"; }
if ! { wait_for 30 "node $HOST to be idle" node_ready_or_dead && node_ready; }; then
  pid_alive "$SLURMD_PID" || log "slurmd exited"
  tail_log "$D/log/slurmd.log"
  tail_log "$D/log/slurmctld.log"
  die "node $HOST is '$(node_state || true)', not idle"
fi
[[ -z $resumed ]] || log "node was $resumed: resumed it"

log "slurm is up (node $HOST: $(node_state), $CPUS CPUs, MaxArraySize=$MAX_ARRAY_SIZE)"
write_env "$ENV_FILE" "SLURM_CONF=$SLURM_CONF"
