"""Local processes, started by one long-lived bash "spawner" per run.

The spawner forks a subshell that sources the task's launcher: no exec of bash per task,
and the orchestrator pays a pipe round trip instead of a fork/exec of its own large
process. Each task is a process group leader (job control on in the spawner), so
`task kill` and an interrupted run can signal the whole task.

Completion is event-driven. A task this executor launched is reported by its reaper (the
launchers' parent, executors/reaper.py via executors/spawner.py) the moment it is reaped, with
its exit status and the kernel's rusage of its tree, on one pipe in the executor's selector.
A task re-attached after a crash (or launched where no reaper could be had: DRYPIPE_REAPER=0,
a kernel refusing PR_SET_CHILD_SUBREAPER) has a pidfd in the same selector instead.

Without pidfd (Linux before 5.3, e.g. the 4.18 kernel of RHEL/Rocky 8 login nodes; a seccomp
filter answering EPERM; a Python whose os has no pidfd_open), each LocalExecutor picks,
once, a polling fallback instead. DRYPIPE_NO_PIDFD=1 in the environment (any value but empty
or 0) forces it, for tests or where pidfds misbehave; LocalExecutor.watcher says which one
is in use ("pidfd" or "poll"). The fallback keeps an fd open on /proc/<pid>/stat of each
watched launcher and reads it with pread: one syscall, no path lookup. The open fd stays
bound to the process it was opened for, so a recycled pid cannot fool it (a reaped launcher
reads ESRCH, whatever now has its number), and a launcher that ended but is not reaped yet
reads state Z. The reads run at an adaptive interval: 1/16 of the time since a task was last
launched or seen ending, from 0.5 ms up to 100 ms. A task that ends t seconds after that is
seen about t/16 late (a 20 ms task, ~1 ms late; a long one, at most 100 ms late); a long
wait costs ~10 reads a second and a 10 s task ~200 in all, each a few microseconds.
wait(timeout) still returns at its timeout.

Why polling rather than having the spawner report exits (`wait -n -p pid` and an
`exit <pid> <status>` line on its stdout): `wait -p` needs bash 5.1, and the very systems
without pidfd (RHEL/Rocky 8) ship bash 4.4; launchers re-attached after a crash belong to an
earlier spawner, so they would need the polling anyway; and polling a handful of fds every
millisecond or so costs microseconds. The same mechanism for the
tasks that no reaper reports."""
from __future__ import annotations

import errno
import os
import selectors
import signal
import time

from .base import Ended, Executor
from .launchers import is_launcher_alive
from .slots import SlotPool
from .spawner import Spawner

# the fallback's adaptive interval: look again after POLL_FRACTION of the time since a task was
# last launched or seen ending, within [POLL_MIN, POLL_MAX] seconds
POLL_MIN, POLL_MAX, POLL_FRACTION = 0.0005, 0.1, 1 / 16

# what pidfd_open answers where pidfds cannot be had: an old kernel, a seccomp filter
# the I/O counters a reaper's line ends with (executors/reaper.py), named as in the attempt table
IO_COUNTERS = ("rchar", "wchar", "read_bytes", "write_bytes")
_NO_PIDFD_ERRNOS = frozenset({errno.ENOSYS, errno.EPERM, errno.EACCES, errno.EOPNOTSUPP})


def pidfd_usable() -> bool:
    """Can this process watch others with pidfds? False under DRYPIPE_NO_PIDFD=1 (any value but
    empty or 0), when os has no pidfd_open, or when the kernel (or seccomp) refuses it."""
    if os.environ.get("DRYPIPE_NO_PIDFD", "") not in ("", "0"):
        return False
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is None:
        return False
    try:
        fd = pidfd_open(os.getpid())
    except OSError:  # ENOSYS (kernel < 5.3), EPERM (seccomp), ...: polling works everywhere
        return False
    os.close(fd)
    return True


def _stat_alive(fd: int) -> bool:
    """Is the process an open /proc/<pid>/stat fd was opened for still running (not a zombie)?"""
    try:
        data = os.pread(fd, 256, 0)
    except OSError:  # ESRCH: reaped (its pid may belong to another process by now)
        return False
    state = data.rpartition(b")")[2].split(None, 1)[:1]
    return bool(state) and state[0] not in (b"Z", b"X", b"x")


class LocalExecutor(Executor):
    name = "process"

    def __init__(self, runtime: str, max_parallel: int | None = None, pool: SlotPool | None = None):
        self.runtime = runtime
        self.max_parallel = max_parallel or os.cpu_count() or 1
        self._sel = selectors.DefaultSelector()
        self.pool = pool  # slots shared with other instances (drypipe service -j)
        self._wake_fds: tuple[int, int] | None = None
        if pool is not None:  # the pool wakes a hungry executor when slots are freed
            self._wake_fds = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
            self._sel.register(self._wake_fds[0], selectors.EVENT_READ)
        self._woken = False
        self._procs: dict[int, tuple[str, int]] = {}  # pidfd -> (key, pid)
        self._polled: dict[int, tuple[str, int]] = {}  # fd on /proc/<pid>/stat -> (key, pid)
        self._mine: dict[int, tuple[str, int]] = {}  # pid -> (key, reports fd): its reaper will say
        self._reports: dict[int, bytes] = {}  # a reaper's fd -> the part of a line read so far
        self._poll_since = time.monotonic()
        self.watcher = "pidfd" if pidfd_usable() else "poll"
        self._spawner: Spawner | None = None
        self._warm: Spawner | None = None  # started ahead (warm), not yet used
        self._ended_early: list[Ended] = []
        self.launched_here: set[str] = set()  # running keys this executor's spawner forked
        self.detached = False  # launch tasks this process will not watch (they write their states)

    def capacity(self, want: int | None = None) -> int:
        """How many tasks may be launched now (at most want); with a pool, they are reserved."""
        if self._spawner is None and self.pool is None:
            self._new_spawner()  # (whether its reaper admits launchers decides the number)
        own = self.max_parallel + self.queued_max - self.running
        if self.queued_max and self.running >= self.max_parallel and own < min(want or 1, self.batch):
            own = 0  # every slot taken: launch once a batch can go (one fork of the spawner for all)
        if self.pool is None:
            return own
        return self.pool.reserve(self, self.running, own if want is None else min(own, want))

    def wake(self) -> None:
        """Called by the pool (from another thread): slots were freed, stop waiting."""
        fds = self._wake_fds
        if fds is not None:
            try:
                os.write(fds[1], b"w")
            except (BlockingIOError, OSError):
                pass  # already woken (pipe full), or closed

    @property
    def queued_max(self) -> int:
        """Launched tasks that may wait for a slot at the reaper, beside the running ones: two
        batches and 2 x -j, when the reaper admits them (executors/reaper.py; not under a
        service's pool, whose slots are shared), else none. Deep enough that the next batch is
        forked before the reaper has admitted the last one (its slots would stand empty)."""
        sp = self._spawner
        return 2 * self.batch + 2 * self.max_parallel if sp is not None and sp.admit == self.max_parallel else 0

    @property
    def batch(self) -> int:
        """Launches wait until this many can go at once, once every slot is taken: a batch costs
        the spawner one fork of its own besides its launchers' (2 x -j, at least 16: batches of
        4 took a tenth of a 1000-task run's CPU in the spawner's forks of its own)."""
        return max(2 * self.max_parallel, 16)

    @property
    def running_now(self) -> int:
        """Tasks running, those waiting for a slot at the reaper not counted (progress display)."""
        return min(self.running, self.max_parallel) if self.queued_max else self.running

    @property
    def running(self) -> int:
        return len(self._procs) + len(self._polled) + len(self._mine) + len(self._ended_early)

    def running_keys(self) -> list[str]:
        return [k for k, _ in self._keys_and_pids()]

    def launch_many(self, items: list[tuple[str, str, int]], meanwhile=None) -> list[str]:
        """items: (key, task script, start step); returns the pids as job ids. meanwhile: work
        of the caller's, done while the spawner forks (Spawner.spawn_many)."""
        if not items:
            return []
        lines = [(script, step) for _, script, step in items]
        if any("\t" in s or "\n" in s for s, _ in lines):  # keys cannot have them; instance dirs might
            raise ValueError("the instance directory path may not contain tabs or newlines")
        if self._spawner is None or self._spawner.admit not in (0, self._admit()):
            self._new_spawner()  # (-j changed: the old reaper admits what it was given)
        queued = max(0, len(lines) - max(0, self.max_parallel - self.running))  # (they wait for a slot)
        try:
            pids = self._spawner.spawn_many(lines, meanwhile, queued)
        except (BrokenPipeError, EOFError):  # the spawner died (killed by hand?): start another
            self._new_spawner()
            pids = self._spawner.spawn_many(lines, meanwhile, queued)
        reports = self._spawner.reports
        for (key, _, _), pid in zip(items, pids):
            if not self.detached:
                self.launched_here.add(key)  # its launcher only logs its states: we mirror them
            if reports is not None:  # its reaper reports its end (and what it used)
                self._mine[pid] = (key, reports)
            elif not self._watch(key, pid):
                self._ended_early.append(Ended(key, None))
        return [str(p) for p in pids]

    def warm(self) -> None:
        """Start the spawner now, while the caller has other work (a run's generation): its
        start no longer holds the first launch. Unused, it goes at shutdown."""
        if self._spawner is None and self._warm is None and self.pool is None:
            self._warm = Spawner(self.runtime, watcher=None if self.detached else os.getpid(),
                                 admit=self._admit(), wait=False)

    def _new_spawner(self) -> None:
        if self._spawner is not None:
            self._spawner.close()
        watcher = None if self.detached else os.getpid()
        warm, self._warm = self._warm, None
        if warm is not None and (warm.watcher, warm.limit) == (watcher, self._admit()):
            self._spawner = warm.ready()
        else:
            if warm is not None:
                warm.close()
            self._spawner = Spawner(self.runtime, watcher=watcher, admit=self._admit())
        fd = self._spawner.reports
        if fd is not None:
            self._reports[fd] = b""
            self._sel.register(fd, selectors.EVENT_READ)

    def _admit(self) -> int:
        return 0 if self.pool is not None else self.max_parallel

    def _read_reports(self, fd: int) -> list[Ended]:
        """The launchers a reaper reaped (lines `pid exit maxrss-KiB utime stime rchar wchar
        read_bytes write_bytes`, executors/reaper.py); at its EOF
        (it was killed), the tasks it would have reported are watched by pidfd or polling."""
        chunks = []
        try:
            while True:
                data = os.read(fd, 65536)
                if not data:
                    break
                chunks.append(data)
        except BlockingIOError:
            data = None
        ended = []
        lines = (self._reports[fd] + b"".join(chunks)).split(b"\n")
        self._reports[fd] = lines.pop()
        for line in lines:
            pid, code, maxrss, utime, stime, *io = line.split()
            key = self._mine.pop(int(pid), (None,))[0]
            if key is not None:
                usage = {"peak_rss": int(maxrss) * 1024, "cpu_user": float(utime), "cpu_sys": float(stime)}
                usage.update((name, int(v)) for name, v in zip(IO_COUNTERS, io) if v.isdigit())
                ended.append(Ended(key, int(code), usage))
        if data is not None:  # EOF: the reaper is gone
            self._sel.unregister(fd)
            os.close(fd)
            del self._reports[fd]
            if self._spawner is not None and self._spawner.reports == fd:  # the next launch starts anew
                self._spawner.reports = None
                self._spawner.close()
                self._spawner = None
            for pid, (key, r) in list(self._mine.items()):
                if r == fd:
                    del self._mine[pid]
                    _resume(pid)  # a launcher waiting for its reaper to admit it runs now
                    if not self._watch(key, pid):
                        ended.append(Ended(key, None))
        return ended

    def launch(self, key: str, task_script: str, start_step: int) -> str:
        return self.launch_many([(key, task_script, start_step)])[0]

    # the Executor contract: submit = launch_many; poll = wait; watch = attach; close = shutdown
    def poll(self, timeout: float = 0.0) -> list[Ended]:
        return self.wait(timeout)

    def watch(self, key: str, job_id: str, *where) -> bool:
        return self.attach(key, job_id, *where)

    def cancel(self, keys) -> None:
        keys = set(keys)
        for key, pid in [kp for kp in self._keys_and_pids() if kp[0] in keys]:
            _terminate(pid)

    def close(self) -> None:
        self.shutdown(kill=False)
        if self.pool is not None:
            self.pool.forget(self)
        fds, self._wake_fds = self._wake_fds, None
        if fds is not None:
            self._sel.unregister(fds[0])
            for fd in fds:
                os.close(fd)
        for fd in self._reports:  # the reapers keep reaping; their lines go nowhere now
            self._sel.unregister(fd)
            os.close(fd)
        self._reports.clear()
        self._mine.clear()

    def attach(self, key: str, job_id: str, task_dir: str) -> bool:
        """Watch a launcher of an earlier orchestrator; one still waiting to be admitted by its
        reaper (which may be gone, killed with the orchestrator) is let run now."""
        pid = int(job_id)
        if self.watcher == "poll":
            # open first, check after: the fd then pins the process is_launcher_alive vetted
            fd = self._open_stat(pid)
            if fd is None:
                return False
            if not is_launcher_alive(pid, task_dir) or not _stat_alive(fd):
                os.close(fd)
                return False
            _resume_if_stopped(pid)
            self._polled[fd] = (key, pid)
            self._poll_since = time.monotonic()
            return True
        if not is_launcher_alive(pid, task_dir):
            return False
        _resume_if_stopped(pid)  # (vetted: not a recycled pid)
        return self._watch(key, pid)

    def _watch(self, key, pid) -> bool:
        if self.watcher == "pidfd":
            try:
                fd = os.pidfd_open(pid)
            except ProcessLookupError:
                return False
            except OSError as e:  # refused now although the probe passed: poll from now on
                if e.errno not in _NO_PIDFD_ERRNOS:
                    raise
                self.watcher = "poll"
            else:
                self._procs[fd] = (key, pid)
                self._sel.register(fd, selectors.EVENT_READ)
                return True
        fd = self._open_stat(pid)
        if fd is None:
            return False
        if not _stat_alive(fd):
            os.close(fd)
            return False
        self._polled[fd] = (key, pid)
        self._poll_since = time.monotonic()  # a new task: look again soon
        return True

    @staticmethod
    def _open_stat(pid: int) -> int | None:
        try:
            return os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
        except (FileNotFoundError, ProcessLookupError):
            return None

    def _poll_ended(self) -> list[Ended]:
        ended = []
        for fd, (key, _) in list(self._polled.items()):
            if not _stat_alive(fd):
                del self._polled[fd]
                os.close(fd)
                ended.append(Ended(key, None))
        return ended

    def _select_ended(self, timeout: float | None) -> list[Ended]:
        ended = []
        for sk, _ in self._sel.select(timeout):
            fd = sk.fd
            if self._wake_fds is not None and fd == self._wake_fds[0]:
                self._drain_wake()
                continue
            if fd in self._reports:
                ended += self._read_reports(fd)
                continue
            key, pid = self._procs.pop(fd)
            self._sel.unregister(fd)
            os.close(fd)
            ended.append(Ended(key, None))
        return ended

    def _drain_wake(self) -> None:
        try:
            while os.read(self._wake_fds[0], 512):
                pass
        except (BlockingIOError, OSError):
            pass
        self._woken = True

    def wait(self, timeout: float | None) -> list[Ended]:
        """The tasks that ended, waiting up to timeout seconds for one (returns early, maybe
        empty, when the slot pool frees slots this executor asked for)."""
        self._woken = False
        ended = self._wait(timeout)
        for e in ended:
            self.launched_here.discard(e.key)
        if self.pool is not None:
            self.pool.settle(self, self.running)
        return ended

    def _wait(self, timeout: float | None) -> list[Ended]:
        if self._ended_early:
            ended, self._ended_early = self._ended_early, []
            return ended
        if not self._polled:
            return self._select_ended(timeout) if (self._procs or self._mine or self._wake_fds) else []
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            ended = self._poll_ended()
            now = time.monotonic()
            if ended:
                self._poll_since = now  # tasks end, others get launched: look again soon
                return ended + (self._select_ended(0) if (self._procs or self._mine) else [])
            step = min(POLL_MAX, max(POLL_MIN, (now - self._poll_since) * POLL_FRACTION))
            if deadline is not None:
                if now >= deadline:
                    return []
                step = min(step, deadline - now)
            if self._procs or self._mine or self._wake_fds:  # pidfds or reapers too, or the pool's wake-up
                ended = self._select_ended(step)
                if ended or self._woken:
                    return ended + self._poll_ended()
            else:
                time.sleep(step)

    def kill_all(self) -> None:
        for _, pid in self._keys_and_pids():
            _terminate(pid)

    def _keys_and_pids(self) -> list[tuple[str, int]]:
        return list(self._procs.values()) + list(self._polled.values()) + \
            [(key, pid) for pid, (key, _) in self._mine.items()]

    def shutdown(self, kill: bool) -> None:
        if kill:
            self.kill_all()
        for sp in (self._spawner, self._warm):
            if sp is not None:
                sp.close()
        self._spawner = self._warm = None


def _terminate(pid: int) -> None:
    """SIGTERM to a launcher's process group (its steps and what they started), then SIGCONT:
    a launcher waiting for its reaper to admit it is stopped, and would not see the SIGTERM."""
    for sig in (signal.SIGTERM, signal.SIGCONT):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass


def _resume(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGCONT)
    except (ProcessLookupError, PermissionError):
        pass


def _resume_if_stopped(pid: int) -> None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            stopped = f.read().rsplit(")", 1)[1].split()[0] == "T"
    except (OSError, IndexError):
        return
    if stopped:
        _resume(pid)
