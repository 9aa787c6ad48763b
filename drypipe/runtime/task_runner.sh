# ---- DryPipe task runtime: the functions of every task launcher of an instance ----------
# Installed as .drypipe/_runtime/task-runner.sh; each .drypipe/<key>/task defines its own
# steps and checks, then calls __drypipe_main (this file is preloaded by the local spawner,
# so a forked task does not re-read it).
# Usage: task [run [STEP]] | kill | tail | ps | env | help
# Run: executes the task's steps from STEP (default 0) and reports progress by renaming its
# one state file (state.step-started.N, state.completed, state.failed.N, state.killed.N) and
# appending to drypipe.log. Bash steps run with errexit and pipefail, in a subshell, or in the
# launcher itself for the last one when it can (see __drypipe_inline).

# Bash copies a function's whole body at every call (and frees the copy after): on a
# launcher's way (its orchestrator watching), a big function that has nothing to do is not
# called, the caller tests first, and rare cases live in functions of their own.

# A task its orchestrator watches forks none of these: its orchestrator makes and removes its
# dirs and writes its state file (see __drypipe_state), task-env.sh and task-conf.json. Tasks
# run by Slurm, on a remote host or by hand fork them, a few milliseconds per task.
drypipe_rename() { mv -f -- "$1" "$2"; }
drypipe_rmdir() { rmdir -- "$1" 2>/dev/null || :; }
drypipe_mkdir() { mkdir -p -- "$1"; }
__drypipe_runner_loaded=1

__drypipe_log() {  # drypipe.log is the launcher's stdout and stderr while it runs (one open, no fork)
  if [[ -n ${__drypipe_logging:-} && $* != *[$'\n\r']* ]]; then
    printf '%(%Y-%m-%dT%H:%M:%S)T %s %s\n' -1 "$EPOCHREALTIME" "$*"
  else
    __drypipe_log_any "$@"
  fi
}

__drypipe_log_any() {  # (before the launcher's output went to drypipe.log, or a line to escape)
  local __drypipe_m="$*"
  __drypipe_m=${__drypipe_m//$'\n'/\\n}  # one event per line: a value cannot forge a line
  __drypipe_m=${__drypipe_m//$'\r'/\\r}
  if [[ -n ${__drypipe_logging:-} ]]; then
    printf '%(%Y-%m-%dT%H:%M:%S)T %s %s\n' -1 "$EPOCHREALTIME" "$__drypipe_m"
  else
    printf '%(%Y-%m-%dT%H:%M:%S)T %s %s\n' -1 "$EPOCHREALTIME" "$__drypipe_m" >> "$__task_dir/drypipe.log"
  fi
}

# A task its orchestrator watches (forked by its spawner: __drypipe_watched is the
# orchestrator's pid) only logs each state: the orchestrator mirrors what it reads in
# drypipe.log to the state file, and the launcher forks no `mv`. If that orchestrator is gone
# (its /proc entry), the task renames its state file itself, as a task run by hand or by
# Slurm always does; a crash between the two leaves the log, which the next run ingests.
__drypipe_alive() {  # pid: is it still there? (one stat; `kill -0 2>/dev/null` makes ten calls)
  [[ -d /proc/$1 ]] || { [[ ! -d /proc/self ]] && kill -0 "$1" 2>/dev/null; }
}

__drypipe_state() {  # (a state name has no newline: logged as is; __drypipe_alive's test first, inline)
  if [[ -n ${__drypipe_watched:-} ]] && { [[ -d /proc/$__drypipe_watched ]] || __drypipe_alive "$__drypipe_watched"; }; then
    if [[ -n ${__drypipe_logging:-} ]]; then
      printf '%(%Y-%m-%dT%H:%M:%S)T %s %s\n' -1 "$EPOCHREALTIME" "$1"
    else
      __drypipe_log "$1"
    fi
  else
    __drypipe_state_file "$1"
  fi
}

__drypipe_state_file() {  # state: rename the state file (nobody watches this task), and log it
  local __drypipe_f
  for __drypipe_f in "$__task_dir"/state.*; do
    [[ -e $__drypipe_f ]] || continue
    [[ $__drypipe_f == "$__task_dir/state.$1" ]] || drypipe_rename "$__drypipe_f" "$__task_dir/state.$1"
    __drypipe_log "$1"
    return
  done
  : > "$__task_dir/state.$1"
  __drypipe_log "$1"
}

__drypipe_fail() {  # step message...
  local __drypipe_failed_step=$1; shift
  __drypipe_log "error: $*"
  printf 'drypipe: task %s: %s\n' "$__task_key" "$*" >> "$__task_dir/out.log"
  __drypipe_usage "${__drypipe_exit:-1}"
  __drypipe_state "failed.$__drypipe_failed_step"
  exit 1
}

# -- what an attempt used, measured by the kernel, read without forking ---------------------
# CPU: user and system ticks of the launcher and of every process it reaped (its steps, and
# what they reaped in turn): /proc/<launcher>/stat utime, stime, cutime, cstime. I/O: the same
# tree's rchar, wchar, read_bytes, write_bytes, from /proc/<launcher>/io. Peak memory:
# the attempt's own memory cgroup, whole process tree: a Slurm job's (task/cgroup), else, with
# DRYPIPE_CGROUPS=1, one made for the attempt where this machine lets us (cgroup v1 memory
# hierarchy writable; the peak counts page cache too). Not by default: a memory cgroup that
# held page cache lingers in the kernel after its removal (a "dying" memcg) until the cache is
# reclaimed, and one per task adds up to thousands a day. DRYPIPE_CGROUPS=0: none at all.
__drypipe_cg= __drypipe_cg_file= __drypipe_cg_parent=
__drypipe_cg_join() {  # (called when DRYPIPE_CGROUPS=1 or under Slurm)
  [[ ${DRYPIPE_CGROUPS:-} == 1 || (-n ${SLURM_JOB_ID:-} && ${DRYPIPE_CGROUPS:-} != 0) ]] || return 0
  [[ -r /proc/self/cgroup ]] || return 0
  local __drypipe_l __drypipe_p= __drypipe_f=
  while IFS= read -r __drypipe_l; do
    case $__drypipe_l in
      *:memory:*) __drypipe_p=/sys/fs/cgroup/memory${__drypipe_l#*:memory:}; __drypipe_f=memory.max_usage_in_bytes ;;
      0::*) [[ -z $__drypipe_f ]] && { __drypipe_p=/sys/fs/cgroup${__drypipe_l#0::}; __drypipe_f=memory.peak; } ;;
    esac
  done < /proc/self/cgroup
  __drypipe_p=${__drypipe_p%/}
  [[ -n $__drypipe_p && -r $__drypipe_p/$__drypipe_f ]] || return 0
  if [[ -n ${SLURM_JOB_ID:-} && $__drypipe_p == *job_${SLURM_JOB_ID}* ]]; then
    __drypipe_cg=$__drypipe_p __drypipe_cg_file=$__drypipe_f  # the job's own
    return 0
  fi
  [[ ${DRYPIPE_CGROUPS:-} == 1 && $__drypipe_f == memory.max_usage_in_bytes && -w $__drypipe_p/cgroup.procs ]] || return 0
  local __drypipe_d=$__drypipe_p/drypipe-$BASHPID
  drypipe_mkdir "$__drypipe_d" 2>/dev/null || return 0
  if { echo "$BASHPID" > "$__drypipe_d/cgroup.procs"; } 2>/dev/null; then
    __drypipe_cg=$__drypipe_d __drypipe_cg_file=$__drypipe_f __drypipe_cg_parent=$__drypipe_p
  else
    drypipe_rmdir "$__drypipe_d"
  fi
}

# A watched launcher that completes, forked under a reaper (__drypipe_gate, set by the
# spawner) with no cgroup of its own, logs no usage: its reaper reads the same counters from
# /proc when it exits and reports them to the orchestrator (executors/reaper.py), for a
# fraction of what these reads cost a forked bash. (Its orchestrator gone, it logs them.)
__drypipe_reaper_reports() {
  [[ -n ${__drypipe_gate:-} && -z $__drypipe_cg && -n ${__drypipe_watched:-} ]] && __drypipe_alive "$__drypipe_watched"
}

# The fields of a /proc/<pid>/stat line after the comm (which may hold `) `): not
# ${line##*) }, which bash matches in quadratic time (0.1 ms for a 300-byte line, on every
# launcher), but the shortest match, again while a `)` is left (none in the numeric fields).
__drypipe_stat_fields() {  # line: sets the array __drypipe_f ([0] state, [1] ppid, [11] utime...)
  local __drypipe_r=${1#*) }
  while [[ $__drypipe_r == *')'* ]]; do __drypipe_r=${__drypipe_r#*) }; done
  __drypipe_f=($__drypipe_r)
}

__drypipe_usage() {  # exit-status: log what this attempt used (`usage` line of drypipe.log)
  local __drypipe_s= __drypipe_v= __drypipe_f=() __drypipe_io= __drypipe_l
  { read -r __drypipe_s < "/proc/$BASHPID/stat"; } 2>/dev/null && __drypipe_stat_fields "$__drypipe_s"
  # I/O: the kernel adds a reaped child's counters to its parent's, as it does for CPU
  { while read -r __drypipe_l; do
      case $__drypipe_l in rchar:*|wchar:*|read_bytes:*|write_bytes:*) __drypipe_io+=" ${__drypipe_l%%:*}=${__drypipe_l##* }" ;; esac
    done < "/proc/$BASHPID/io"; } 2>/dev/null
  [[ -n $__drypipe_cg ]] && { read -r __drypipe_v < "$__drypipe_cg/$__drypipe_cg_file"; } 2>/dev/null
  __drypipe_log "usage exit=$1 host=${HOSTNAME:-?}${__drypipe_f[14]:+ ticks=$((__drypipe_f[11] + __drypipe_f[13])),$((__drypipe_f[12] + __drypipe_f[14]))}${__drypipe_v:+ peak_rss=$__drypipe_v}$__drypipe_io"
  # leave the attempt's cgroup and remove it; a task forked by an orchestrator's spawner leaves
  # that to the orchestrator, off its critical path (a migration costs ~250 us)
  if [[ -n $__drypipe_cg_parent && -z ${__drypipe_watched:-} ]]; then
    { echo "$BASHPID" > "$__drypipe_cg_parent/cgroup.procs"; } 2>/dev/null && drypipe_rmdir "$__drypipe_cg"
    __drypipe_cg_parent=
  fi
}

__drypipe_load_vars() {
  [[ -f $__task_dir/output-vars ]] || return 0
  local __n __v
  while IFS= read -r -d '' __n && IFS= read -r -d '' __v; do
    export "$__n=$__v"
  done < "$__task_dir/output-vars"
}

__drypipe_capture() {  # EXIT trap of a bash step: append the declared variables it set
  [[ $1 == 0 && -n $__drypipe_output_vars ]] || return 0
  local __v
  for __v in $__drypipe_output_vars; do
    [[ -v $__v ]] && printf '%s\0%s\0' "$__v" "${!__v}"
  done >> "$__task_dir/output-vars"
  return 0
}

# Checks set __drypipe_msg and return 1 on failure (no command substitution: no fork).
__drypipe_need_var() {  # name type
  [[ -v $1 ]] || { __drypipe_msg="output variable $1 was never set"; return 1; }
  local __drypipe_v=${!1}
  case $2 in
    int) [[ $__drypipe_v =~ ^[[:space:]]*[-+]?[0-9]+[[:space:]]*$ ]] || { __drypipe_msg="output variable $1=int given '$__drypipe_v'"; return 1; } ;;
    float) shopt -s nocasematch
      [[ $__drypipe_v =~ ^[[:space:]]*[-+]?(([0-9]+\.?[0-9]*|\.[0-9]+)(e[-+]?[0-9]+)?|inf|infinity|nan)[[:space:]]*$ ]] || { shopt -u nocasematch; __drypipe_msg="output variable $1=float given '$__drypipe_v'"; return 1; }
      shopt -u nocasematch ;;
    bool) shopt -s nocasematch
      [[ $__drypipe_v =~ ^[[:space:]]*(true|false|1|0|yes|no)?[[:space:]]*$ ]] || { shopt -u nocasematch; __drypipe_msg="output variable $1=bool given '$__drypipe_v'"; return 1; }
      shopt -u nocasematch ;;
  esac
  return 0
}

__drypipe_need_file() {  # name [path: the declared one, whatever the step did to $name]
  local __drypipe_p=${2-${!1}}
  [[ -e $__drypipe_p ]] || { __drypipe_msg="output file $1 (${__drypipe_p#"$__pipeline_instance_dir"/}) was not produced"; return 1; }
}

__drypipe_need_input() {  # name
  [[ -e ${!1} ]] || { __drypipe_msg="input file $1 (${!1}) does not exist"; return 1; }
}

__drypipe_in_container() {  # step: run `task step N` in the task's image (apptainer or singularity)
  local __drypipe_cmd=apptainer __drypipe_image=$__drypipe_container __drypipe_binds=()
  command -v apptainer >/dev/null || { command -v singularity >/dev/null && __drypipe_cmd=singularity; }
  if [[ $__drypipe_image != /* ]]; then
    __drypipe_image=${__containers_dir:-$__pipeline_code_dir}/$__drypipe_image
  fi
  __drypipe_binds=(--bind "$__pipeline_instance_dir")
  [[ -d $__pipeline_code_dir ]] && __drypipe_binds+=(--bind "$__pipeline_code_dir")
  [[ -n $__drypipe_root && -d $__drypipe_root ]] && __drypipe_binds+=(--bind "$__drypipe_root")
  [[ -n ${SLURM_TMPDIR:-} ]] && __drypipe_binds+=(--bind "$SLURM_TMPDIR")
  "$__drypipe_cmd" exec "${__drypipe_binds[@]}" "$__drypipe_image" bash "$__task_dir/task" step "$1"
}

__drypipe_on_signal() {
  trap - TERM INT HUP EXIT
  exec 2>>"$__task_dir/drypipe.log" >&2  # (a step's redirection to out.log may be in force)
  __drypipe_log "received signal"
  __drypipe_usage 143
  __drypipe_state "killed.${__drypipe_step:-0}"
  exit 143
}

__drypipe_pid() {
  local line pid=
  [[ -f $__task_dir/drypipe.log ]] || return 1
  while IFS= read -r line; do
    [[ $line == *" pid="* ]] && pid=${line##* pid=}
  done < "$__task_dir/drypipe.log"
  pid=${pid%% *}
  [[ -n $pid ]] && echo "$pid"
}

# A launcher forked by the spawner of a reaper that admits them (executors/reaper.py) stops
# itself (SIGSTOP: the one stop signal that works in a process group with no parent in its
# session) and runs on when the reaper sends SIGCONT, with one of the -j slots. It stops only
# once re-parented to the reaper ($PPID, the spawner's parent): were its first parent, the
# batch subshell, to exit while it is stopped, the kernel would send it SIGHUP and SIGCONT (an
# orphaned process group with a stopped member). If the reaper is gone, it does not stop.
__drypipe_wait_admission() {  # start-step
  local __drypipe_l __drypipe_f
  [[ -r /proc/$BASHPID/stat ]] || return 0  # (then read with no 2>/dev/null: a redirection costs)
  while :; do
    read -r __drypipe_l < "/proc/$BASHPID/stat" || return 0
    __drypipe_stat_fields "$__drypipe_l"
    [[ ${__drypipe_f[1]} == "$__drypipe_admit" ]] || break  # the batch subshell: not yet
  done
  [[ ${__drypipe_f[1]} == "$PPID" ]] || return 0
  __drypipe_log "queued pid=$BASHPID"  # (for `task kill`: it is this launcher's)
  __drypipe_step=$1  # killed while it waits: it says so (its TERM trap), else it would be relaunched
  trap '' HUP
  kill -STOP "$BASHPID"
  trap __drypipe_on_signal HUP
}

__drypipe_prepare() {  # start-step: the cgroup, the dirs, the variables, the inputs, the traps
  [[ ${DRYPIPE_CGROUPS:-} == 1 || -n ${SLURM_JOB_ID:-} ]] && __drypipe_cg_join
  # a local task's orchestrator made both dirs before launching it: no mkdir (a fork) on the
  # task's way
  [[ -d $__task_output_dir ]] || drypipe_mkdir "$__task_output_dir"
  cd -- "$__task_output_dir" || __drypipe_fail "$1" "cannot enter $__task_output_dir"
  [[ -z ${SLURM_TMPDIR:-} && ! -d $__scratch_dir ]] && drypipe_mkdir "$__scratch_dir"
  if (( $1 > 0 )); then __drypipe_load_vars; elif [[ -e $__task_dir/output-vars ]]; then : > "$__task_dir/output-vars"; fi
  [[ -z ${__drypipe_input_checks:-} ]] || __drypipe_check_inputs || __drypipe_fail "$1" "$__drypipe_msg"
  trap __drypipe_on_signal TERM INT HUP
}

# Functions called around user steps use only __drypipe-prefixed names: bash scoping is
# dynamic, so a plain `local n` here would shadow a task input or output named n.
__drypipe_run() {
  local __drypipe_start=${1:-0}
  exec 2>>"$__task_dir/drypipe.log" >&2 </dev/null
  __drypipe_logging=1
  if [[ -n ${__drypipe_admit:-} ]]; then
    # launched while every -j slot was taken: what needs no slot is done before it waits for one
    __drypipe_prepare "$__drypipe_start"
    : >> "$__out_log"  # (made now, its step only opens it)
    __drypipe_wait_admission "$__drypipe_start"
    printf '%(%Y-%m-%dT%H:%M:%S)T %s %s\n' -1 "$EPOCHREALTIME" "start step=$__drypipe_start pid=$BASHPID"
  else
    printf '%(%Y-%m-%dT%H:%M:%S)T %s %s\n' -1 "$EPOCHREALTIME" \
      "start step=$__drypipe_start pid=$BASHPID${SLURM_JOB_ID:+ slurm_job=${SLURM_JOB_ID//[^0-9_]}}"
    __drypipe_prepare "$__drypipe_start"
  fi
  for (( __drypipe_step = __drypipe_start; __drypipe_step < __drypipe_n_steps; __drypipe_step++ )); do
    if [[ -n ${__drypipe_watched:-} && -d /proc/$__drypipe_watched ]]; then  # (__drypipe_state, inline)
      printf '%(%Y-%m-%dT%H:%M:%S)T %s %s\n' -1 "$EPOCHREALTIME" "step-started.$__drypipe_step"
    else
      __drypipe_state "step-started.$__drypipe_step"
    fi
    if (( __drypipe_step == ${__drypipe_inline_step:--1} )); then
      __drypipe_inline "$__drypipe_step"  # returns only if the step succeeded
    else
      "__drypipe_step_$__drypipe_step" >> "$__out_log" 2>&1
      __drypipe_step_ended $?
    fi
  done
  __drypipe_complete
}

__drypipe_step_ended() {  # status: a step that failed fails the task (exit); else its variables are loaded
  if (( $1 != 0 )); then
    __drypipe_exit=$1
    if [[ -s $__task_dir/step-error ]]; then  # a python call broke its contract: say how
      IFS= read -r -d '' __drypipe_msg < "$__task_dir/step-error"
      : > "$__task_dir/step-error"
      __drypipe_fail "$__drypipe_step" "$__drypipe_msg"
    fi
    __drypipe_fail "$__drypipe_step" "step $__drypipe_step exited with status $1"
  fi
  __drypipe_load_vars
}

__drypipe_complete() {  # the steps ran: check the outputs, say completed, exit
  __drypipe_step=$(( __drypipe_n_steps - 1 ))
  __drypipe_check_outputs || __drypipe_fail "$__drypipe_step" "$__drypipe_msg"
  # an empty scratch dir goes; a watched task's orchestrator removes it when it ingests the end
  [[ -z ${SLURM_TMPDIR:-} && -z ${__drypipe_watched:-} ]] && drypipe_rmdir "$__task_output_dir/scratch"
  trap - TERM INT HUP
  if [[ -n ${__drypipe_logging:-} && -n ${__drypipe_watched:-} && -d /proc/$__drypipe_watched ]]; then
    # its orchestrator is there (__drypipe_reaper_reports and __drypipe_state, inline)
    [[ -n ${__drypipe_gate:-} && -z $__drypipe_cg ]] || __drypipe_usage 0
    printf '%(%Y-%m-%dT%H:%M:%S)T %s %s\n' -1 "$EPOCHREALTIME" completed
  else
    __drypipe_reaper_reports || __drypipe_usage 0
    __drypipe_state completed
  fi
  exit 0
}

# A bash step that may run in the launcher itself (render.py: the task's last step, with no
# trap, exec, eval or source of its own) does, rather than in a subshell forked for it: a fork
# of bash and its exit cost more than most steps. The step sees what a subshell would give it
# (errexit and pipefail, stdout and stderr to out.log); an `exit` or a failing command ends
# the launcher, and the EXIT trap (__drypipe_inline_exit) takes it from there. Whatever the
# step changed (options, IFS, directory) is reset before the checks, which do not read the
# variables it may have changed (an output file's check names its declared path).
__drypipe_inline() {  # step
  trap '__drypipe_inline_exit $?' EXIT
  set -eo pipefail
  "__drypipe_user_step_$1" >> "$__out_log" 2>&1
  { set +x; } 2>/dev/null  # (a step's xtrace: not of this)
  trap - EXIT
  set +eux +o pipefail  # (what __drypipe_inline_reset 0 returned does, inline: a call costs)
  [[ -n $__drypipe_output_vars ]] && __drypipe_capture 0
  IFS=$' \t\n'
  [[ $PWD == "$__task_output_dir" ]] || cd -- "$__task_output_dir" 2>/dev/null
  [[ -f $__task_dir/output-vars ]] && __drypipe_load_vars
}

__drypipe_inline_exit() {  # status (the step exited the launcher)
  { set +x; } 2>/dev/null
  trap - EXIT
  __drypipe_inline_reset "$1"
  __drypipe_step_ended "$1"
  __drypipe_complete
}

__drypipe_inline_reset() {  # status [returned]: back to what a subshell would have left
  set +eux +o pipefail
  [[ -n ${2:-} ]] || exec 2>>"$__task_dir/drypipe.log" >&2  # (out.log when it exited)
  [[ -n $__drypipe_output_vars ]] && __drypipe_capture "$1"
  IFS=$' \t\n'
  [[ $PWD == "$__task_output_dir" ]] || cd -- "$__task_output_dir" 2>/dev/null
  # (the variables it changed need no reset: the output checks name each file's declared path)
}

__drypipe_main() {
# (re)write the files users and python steps read; a watched launcher's orchestrator wrote them
if [[ ${1:-run} == run && -z ${__drypipe_watched:-} ]]; then
  printf '%s' "$__drypipe_env" > "$__task_dir/task-env.sh"
  printf '%s' "$__drypipe_conf" > "$__task_dir/task-conf.json"
fi
eval "$__drypipe_env"
unset __drypipe_conf
if [[ ${1:-run} == run ]]; then __drypipe_run "${2:-0}"; else __drypipe_command "$@"; fi
}

# A launcher its orchestrator watches (forked by the spawner, which loaded this file and set
# __drypipe_tdir, the task dir) that runs its task does what __drypipe_main does, without the
# task's two long strings nor the lines that find its dir: the `task` script calls this before
# them (bash has not read them yet), and its environment comes from task-env.sh, which that
# orchestrator wrote (the same text).
__drypipe_watched_run() {  # [run [STEP]]
  __task_dir=$__drypipe_tdir; unset __drypipe_tdir  # (for this script only)
  [[ ${1:-run} == run && -f $__task_dir/task-env.sh ]] || return 0
  __pipeline_instance_dir=${__task_dir%/.drypipe/*}
  export __pipeline_instance_dir
  . "$__task_dir/task-env.sh"
  __drypipe_run "${2:-0}"
}

__drypipe_command() {  # every command of `task` but run
case $1 in
  step)  # one step's body, in the current process tree (what runs inside a container)
    cd -- "$__task_output_dir" || exit 2
    __drypipe_load_vars
    "__drypipe_body_${2:?step number}" ;;
  kill)
    if [[ -f $__task_dir/slurm-job ]]; then  # a Slurm job: cancel it (pending or running)
      read -r __drypipe_job < "$__task_dir/slurm-job"
      exec scancel "$__drypipe_job"
    fi
    pid=$(__drypipe_pid) || { echo "task $__task_key: no pid recorded (never started?)" >&2; exit 1; }
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" || exit
    kill -CONT -- "-$pid" 2>/dev/null || kill -CONT "$pid" 2>/dev/null || : ;;  # (one waiting for a slot is stopped)
  tail) exec tail -n 50 -F "$__task_dir/out.log" "$__task_dir/drypipe.log" ;;
  ps)  # the launcher's process group: the launcher, its steps and what they started
    pid=$(__drypipe_pid) || { echo "task $__task_key: no pid recorded" >&2; exit 1; }
    pids=$(pgrep -d, -g "$pid") || { echo "task $__task_key: not running (pid $pid)" >&2; exit 1; }
    exec ps -o pid,ppid,etime,args -p "$pids" ;;
  env) __drypipe_load_vars; env | grep -v '^__drypipe' | sort ;;
  help|-h|--help) echo "usage: task [run [STEP]] | kill | tail | ps | env" ;;
  *) echo "usage: task [run [STEP]] | kill | tail | ps | env" >&2; exit 2 ;;
esac
}
