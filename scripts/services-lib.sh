# shellcheck shell=bash
# Shared helpers of scripts/{slurm,sshd,services}-{up,down}.sh. Source it, don't run it.
# Everything these scripts create lives in one private "services dir" (gitignored):
#   $DRYPIPE_TEST_SERVICES, default <repo>/.test-services
# Progress goes to stderr; stdout is kept for the env lines a client needs.

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SERVICES_DIR=${DRYPIPE_TEST_SERVICES:-$REPO/.test-services}

# Debian packages of each service (no slurmdbd: tests use squeue/scontrol, not sacct).
# shellcheck disable=SC2034  # used by the scripts that source this
SLURM_PACKAGES=(munge slurmctld slurmd slurm-client slurm-wlm-basic-plugins)
# shellcheck disable=SC2034
SSHD_PACKAGES=(openssh-server openssh-client rsync)

log() { echo "$(basename "$0"): $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# elapsed START: seconds since START (a `date +%s.%N`), one decimal.
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}'; }

require_root() {
  [[ $(id -u) == 0 ]] || die "must run as root (it installs packages and starts system daemons)"
}

# mkdir_services_dir: the services dir and its parents must be traversable by the daemons'
# users (slurm, munge) and by the ssh test user, so it is 755 (files in it decide the rest).
mkdir_services_dir() {
  mkdir -p "$SERVICES_DIR"
  SERVICES_DIR=$(cd "$SERVICES_DIR" && pwd)
  chmod 755 "$SERVICES_DIR"
  runuser -u nobody -- test -x "$SERVICES_DIR" ||
    die "other users can't reach $SERVICES_DIR (a parent dir lacks o+x, e.g. a clone under /root):" \
      "set DRYPIPE_TEST_SERVICES to a dir they can reach, e.g. /var/tmp/drypipe-test-services"
}

# ensure_packages PKG...: apt-get install those not installed yet (apt-get update first).
# Package scripts must not start daemons: we run our own, with private configs. Debian
# images usually ship a policy-rc.d that denies starts; if this one doesn't, add a temporary one.
ensure_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  log "apt-get install ${missing[*]}"
  local own_policy=
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    own_policy=1
  fi
  local rc=0
  {
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 &&
      apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>"$SERVICES_DIR/apt.err"
  } || rc=$?
  [[ -z $own_policy ]] || rm -f /usr/sbin/policy-rc.d
  if ((rc)); then
    cat "$SERVICES_DIR/apt.err" >&2
    die "apt-get install ${missing[*]} failed"
  fi
  rm -f "$SERVICES_DIR/apt.err"
}

# wait_for SECONDS WHAT CMD...: poll CMD (every 0.1 s) until it succeeds; 1 after the deadline.
wait_for() {
  local timeout=$1 what=$2
  shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      log "timed out after ${timeout}s waiting for $what"
      return 1
    fi
    sleep 0.1
  done
}

# pid_alive PIDFILE: the process named in PIDFILE exists (and is not a zombie).
pid_alive() {
  local pid
  [[ -s $1 ]] || return 1
  pid=$(<"$1")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  [[ $(ps -o stat= -p "$pid" 2>/dev/null) != Z* ]]
}

# proc_gone PID: no such process any more (a zombie counts as gone: pid 1 may not reap).
proc_gone() {
  ! kill -0 "$1" 2>/dev/null || [[ $(ps -o stat= -p "$1" 2>/dev/null) == Z* ]]
}

# stop_pidfile NAME PIDFILE [SECONDS]: TERM the process in PIDFILE, wait for it to exit,
# KILL it after the deadline, remove the pid file. Nothing running is fine.
stop_pidfile() {
  local name=$1 pidfile=$2 timeout=${3:-15} pid
  if ! pid_alive "$pidfile"; then
    rm -f "$pidfile"
    return 0
  fi
  pid=$(<"$pidfile")
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_for "$timeout" "$name to exit" proc_gone "$pid"; then
    log "killing $name (pid $pid)"
    kill -KILL "$pid" 2>/dev/null || true
    wait_for 5 "$name to die" proc_gone "$pid" || die "could not stop $name (pid $pid)"
  fi
  rm -f "$pidfile"
}

# tail_log FILE: the end of a daemon's log, for error messages.
tail_log() {
  if [[ -s $1 ]]; then
    echo "---- last lines of $1 ----" >&2
    tail -n 30 "$1" >&2
    echo "----" >&2
  else
    echo "(no log at $1)" >&2
  fi
}

# write_env FILE KEY=VALUE...: write `export KEY=VALUE` lines (values shell-quoted) to FILE
# atomically, and print them to stdout.
write_env() {
  local file=$1 kv
  shift
  {
    for kv in "$@"; do
      printf 'export %s=%q\n' "${kv%%=*}" "${kv#*=}"
    done
  } >"$file.tmp"
  mv -f "$file.tmp" "$file"
  cat "$file"
}

# replace_if_changed NEW TARGET: move NEW over TARGET when they differ; 0 if TARGET changed.
replace_if_changed() {
  if [[ -f $2 ]] && cmp -s "$1" "$2"; then
    rm -f "$1"
    return 1
  fi
  mv -f "$1" "$2"
}
