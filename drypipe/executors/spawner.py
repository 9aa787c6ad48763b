"""The spawner of local task launchers, and the reaper above it.

The spawner is one long-lived bash per executor that has sourced the task runtime (its
functions) once and forks a launcher per task: no exec of bash per task, and the
orchestrator pays a pipe round trip instead of a fork/exec of its own large process. Each
launcher leads its own process group (job control on in the spawner), so `task kill` and an
interrupted run can signal the whole task.

It runs under the reaper (executors/reaper.py, a process of its own), the launchers' child
subreaper: the spawner double-forks them, so they are re-parented to the reaper, which reaps
each with wait4 and reports its exit status and rusage on a pipe (`Spawner.reports`)."""
from __future__ import annotations

import os
import subprocess
import sys

SPAWNER = r"""set -m
# (GLIBC_TUNABLES: this bash's own, see TUNABLES; not its tasks')
[[ -n ${DRYPIPE_TUNABLES:-} ]] && unset GLIBC_TUNABLES DRYPIPE_TUNABLES
. "$1" || exit 2
# its tasks' orchestrator (this pid) mirrors their states to their state files, makes and
# removes their dirs and spent cgroups (runtime: __drypipe_state, __drypipe_run, __drypipe_usage)
__drypipe_watched=${DRYPIPE_WATCHER:-}; unset DRYPIPE_WATCHER
__drypipe_gate=${DRYPIPE_SPAWNER_GATE:-}; unset DRYPIPE_SPAWNER_GATE  # set by the reaper
__drypipe_admit=${DRYPIPE_ADMIT:-}; unset DRYPIPE_ADMIT  # launchers wait to be admitted (the reaper's)
# A batch: lines `script<TAB>step<TAB>queued`, then an empty line.
if [[ -z $__drypipe_gate ]]; then  # no reaper: the launchers are this shell's children, it reaps them
  while IFS=$'\t' read -r __drypipe_script __drypipe_start __drypipe_q; do
    [[ -n $__drypipe_script ]] || continue
    ( set +m; exec </dev/null >/dev/null 2>&1
      [[ -n $__drypipe_watched ]] && __drypipe_tdir=${__drypipe_script%/*}
      . "$__drypipe_script" run "$__drypipe_start" ) &
    echo "$!"
  done
  exit 0
fi
# Under the reaper: a subshell forks the batch's launchers and exits, so that they are
# re-parented to the reaper (each leads its own process group). The subshell is forked ahead,
# while the previous batch runs, and waits for the next batch itself: a batch costs no fork
# but its launchers'. fd 5 is the read end of a pipe nobody writes to: the subshell opens a
# writer on it once its batch has come, and each launcher waits for EOF there (the subshell is
# exiting: it can no longer reap the launcher) before running its task. The subshell is a
# plain command, not a loop's condition nor a side of || or &&: there, bash would ignore
# `set -e` in everything it starts, the tasks' steps included.
# With admission (the reaper's: DRYPIPE_ADMIT), a batch line has a third field, 1 for a task
# launched while every -j slot is taken: its launcher stops until the reaper admits it. Each
# launcher's pid and that field go to the reaper on fd 7 as it is forked, so the reaper counts
# the ones that run at once too.
while :; do
  ( set -m
    IFS=$'\t' read -r __drypipe_script __drypipe_start __drypipe_q || exit 1
    [[ -n $__drypipe_admit ]] && __drypipe_admit=$BASHPID  # the launchers' first parent
    exec 6>"/proc/$BASHPID/fd/5"
    while [[ -n $__drypipe_script ]]; do
      ( set +m; exec </dev/null >/dev/null 2>&1 6>&- 7>&-
        [[ $__drypipe_q == 1 ]] || __drypipe_admit=
        read -r -u 5 __drypipe_script_; exec 5<&-
        [[ -n $__drypipe_watched ]] && __drypipe_tdir=${__drypipe_script%/*}  # (its `task` script: __drypipe_watched_run)
        . "$__drypipe_script" run "$__drypipe_start" ) &
      echo "$!"
      [[ -n $__drypipe_admit ]] && echo "$! ${__drypipe_q:-0}" >&7
      IFS=$'\t' read -r __drypipe_script __drypipe_start __drypipe_q || exit 0
    done )
  [[ $? == 0 ]] || break
done
"""

# glibc's malloc in the spawner, set when it starts (the variable is then unset: not passed on
# to tasks): a thread cache of 1000 chunks per size rather than 7. Each launcher is a fork of
# the spawner, and every page of its heap that a fork writes is copied (a page fault); with the
# default, most of bash's frees go to bins that write chunk headers all over the heap. This
# spares a launcher about 25 of its 180 page faults and a tenth of its CPU time. A user's own
# GLIBC_TUNABLES is left as it is. (Unknown to an old glibc: ignored.)
TUNABLES = "glibc.malloc.tcache_count=1000"

REAPER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reaper.py")


def reaper_wanted() -> bool:
    """Launch through the reaper (exact exit status and rusage of every launcher)? Not under
    DRYPIPE_REAPER=0, nor where this Python cannot be run again (sys.executable empty)."""
    return os.environ.get("DRYPIPE_REAPER", "") != "0" and bool(sys.executable)


class Spawner:
    """A bash that has sourced the task runtime (its functions) once, and forks
    a launcher per task (`( . TASK run STEP ) &` in a subshell that exits), echoing its pid back.

    It runs under the reaper (executors/reaper.py), the launchers' parent: `reports` is the fd
    of its lines (`pid exit maxrss-KiB utime stime` per reaped launcher), None when the kernel
    would not make it a subreaper (or DRYPIPE_REAPER=0): then nobody reports, launchers are
    watched like re-attached ones."""

    def __init__(self, runtime: str, watcher: int | None = None, admit: int = 0, wait: bool = True):
        """admit: how many launchers its reaper lets run at once (0: all; executors/reaper.py).
        wait=False: return at once; call ready() before reading `reports` or `admit` (the
        reaper's start, ~20 ms, then overlaps the caller's work)."""
        self.reports: int | None = None
        self.admit = 0
        self.watcher = watcher
        self.limit = admit  # (admit, once ready)
        self._answer: int | None = None  # the reaper's first line comes on it
        env = dict(os.environ)
        env.pop("DRYPIPE_WATCHER", None)
        if watcher is not None:  # that process mirrors the launchers' states to their state files
            env["DRYPIPE_WATCHER"] = str(watcher)
        if "GLIBC_TUNABLES" not in env:
            env["GLIBC_TUNABLES"], env["DRYPIPE_TUNABLES"] = TUNABLES, "1"
        if not reaper_wanted():
            self.proc = subprocess.Popen(["bash", "--norc", "--noprofile", "-c", SPAWNER, "drypipe-spawner", runtime],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True, env=env)
            return
        r, w = os.pipe2(os.O_CLOEXEC)
        try:
            self.proc = subprocess.Popen([sys.executable, "-I", "-S", REAPER, runtime, str(w), SPAWNER, str(admit)],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                         start_new_session=True, close_fds=True, pass_fds=(w,), env=env)
        finally:
            os.close(w)
        self._answer = r
        if wait:
            self.ready()

    def ready(self) -> "Spawner":
        """Read the reaper's first line, once: `+` it is the subreaper (reports, admit set)."""
        r, self._answer = self._answer, None
        if r is None:
            return self
        first = os.read(r, 2)  # `+\n` (subreaper), `-\n` (refused), b"" (it died)
        if first == b"+\n":
            os.set_blocking(r, False)
            self.reports = r
            self.admit = self.limit
        else:
            os.close(r)
        return self

    def spawn_many(self, items: list[tuple[str, int]], meanwhile=None, queued: int = 0) -> list[int]:
        """Start the tasks; raises BrokenPipeError or EOFError when the spawner is gone.
        meanwhile: called while the spawner forks, before its pids are read. queued: how many
        of the last items wait for a slot (their reaper admits them; ignored without admission)."""
        first = len(items) - (queued if self.admit else 0)
        data = "".join(f"{s}\t{n}\t{int(i >= first)}\n" for i, (s, n) in enumerate(items))
        data = data.encode("utf-8", "surrogateescape") + b"\n"
        self.proc.stdin.write(data)
        self.proc.stdin.flush()
        if meanwhile is not None:
            meanwhile()
        pids = []
        for _ in items:
            line = self.proc.stdout.readline()
            if not line:
                raise EOFError("the task spawner exited")
            pids.append(int(line))
        return pids

    def close(self):
        """The spawner exits (EOF on its input); the reaper outlives it while launchers run."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        if self._answer is not None:  # (never used)
            os.close(self._answer)
            self._answer = None
        if self.reports is None:
            self.proc.wait()
            return
        try:
            self.proc.stdout.read()  # EOF: the spawner exited
        except OSError:
            pass
        self.proc.stdout.close()
        try:
            self.proc.wait(0.2)  # the reaper exits with the spawner unless launchers still run
        except subprocess.TimeoutExpired:
            pass
