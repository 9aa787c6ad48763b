"""The reaper: the parent of a local executor's task launchers, run as a script of its own
(`python -I -S reaper.py RUNTIME FD SPAWNER [LIMIT]`), never imported by the orchestrator.

It makes itself a child subreaper (prctl PR_SET_CHILD_SUBREAPER), then forks the bash spawner
in a session of its own. The spawner double-forks each launcher (the intermediate subshell exits
at once), so every launcher is re-parented here, and this process reaps it with wait4: the kernel
then hands over the launcher's exit status and the rusage of its whole reaped process tree, the
exact peak resident memory (ru_maxrss: the largest process of the tree, steps included) and CPU
time; before reaping it (waitid WNOWAIT: an exited launcher stays a zombie), it reads the I/O
counters of that same tree from /proc/<pid>/io (the kernel adds a reaped child's to its parent's).
One line per reaped process goes to FD: `pid exit-code maxrss-KiB utime-s stime-s rchar wchar
read_bytes write_bytes` (a signal is a negative exit code; `-` for counters it could not read),
for the executor to read with its other wake-ups. A watched launcher that completes then logs no
`usage` line of its own: reading /proc from a forked bash costs it several times more.

Why a process of its own rather than the orchestrator as subreaper: orphans of user steps
(`nohup x &`) land on the subreaper and must be reaped by someone, and an orchestrator reaping
unknown children would steal those of subprocess.Popen (sbatch, ssh, rsync) in its other
threads. This process has no other children: it reaps everything, and exits when nothing is
left (the spawner gone, the last launcher reaped). If the orchestrator dies, it goes on reaping;
its lines then go nowhere (EPIPE) and the next orchestrator watches the launchers by pidfd.

With LIMIT (the executor's -j), it also decides when each launcher runs (Admission below): the
executor may then hand the spawner two batches and 2 x LIMIT tasks beyond LIMIT (local.py,
queued_max), and a task launched while every slot was taken starts the moment another ends, not
after the orchestrator has heard of the end, recorded it and launched the next (about a
millisecond per task, in which the slot stood empty).

First line: `+` when it is the subreaper, `-` when the kernel refused (then it becomes the
spawner itself, and the executor watches launchers by pidfd or polling as it would anyway)."""
import collections
import os
import signal
import sys


def main() -> None:
    runtime, out, script = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    limit = int(sys.argv[4]) if len(sys.argv) > 4 else 0  # launchers admitted at once; 0: no gate
    argv = ["bash", "--norc", "--noprofile", "-c", script, "drypipe-spawner", runtime]
    try:
        import ctypes
        ok = ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        ok = False
    if not ok:
        os.write(out, b"-\n")
        os.close(out)
        os.execvp("bash", argv)
    gate_r, gate_w = os.pipe()  # the launchers' gate: its read end is the spawner's fd 5
    told_r, told_w = os.pipe()  # the spawner's fd 7: `pid queued` of each launcher it forks
    spawner = os.fork()
    if spawner == 0:
        os.close(out)
        os.dup2(gate_r, 5)  # not close-on-exec, unlike the pipe's own fds
        os.dup2(told_w, 7)
        os.setsid()
        os.environ["DRYPIPE_SPAWNER_GATE"] = "5"
        if limit:
            os.environ["DRYPIPE_ADMIT"] = "1"  # launchers stop, for this process to admit them
        os.execvp("bash", argv)
    os.close(gate_r)
    os.close(gate_w)  # nobody holds a writer: only the spawner's batch subshells open one
    os.close(told_w)
    os.set_blocking(told_r, False)
    devnull = os.open(os.devnull, os.O_RDWR)  # the spawner's pipes are the spawner's alone
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.close(devnull)
    write = True
    try:
        os.write(out, b"+\n")
    except OSError:
        write = False
    gate = Admission(limit)
    flags = os.WEXITED | os.WNOWAIT | (os.WSTOPPED | os.WCONTINUED if limit else 0)
    told = b""
    while True:
        try:
            exited = os.waitid(os.P_ALL, 0, flags)
        except ChildProcessError:
            return
        if limit:  # the launchers forked since: before their stops and exits are counted
            told = gate.told(told + _read_all(told_r))
        if exited is not None and exited.si_code in (os.CLD_STOPPED, os.CLD_CONTINUED):
            try:  # consume the notification (WNOWAIT kept it)
                os.waitid(os.P_PID, exited.si_pid, os.WSTOPPED | os.WCONTINUED | os.WNOHANG)
            except ChildProcessError:
                pass
            if exited.si_code == os.CLD_CONTINUED:
                gate.continued(exited.si_pid)
            elif exited.si_status == signal.SIGSTOP and (
                    exited.si_pid in gate.told_of or _leads_its_group(exited.si_pid)):  # (not a step's orphan)
                gate.stopped(exited.si_pid)
            continue
        if exited is not None and limit:
            gate.exited(exited.si_pid)
        io = b"- - - -"
        if exited is not None and exited.si_pid != spawner and write:
            io = read_io(exited.si_pid)
        try:
            pid, status, ru = os.wait4(exited.si_pid if exited is not None else -1, 0)
        except ChildProcessError:
            return
        if pid == spawner or not write:
            continue
        try:
            os.write(out, b"%d %d %d %.6f %.6f %s\n" % (pid, os.waitstatus_to_exitcode(status), ru.ru_maxrss,
                                                       ru.ru_utime, ru.ru_stime, io))
        except OSError:  # the executor is gone (closed, or its process died): just reap
            write = False


class Admission:
    """Which stopped launchers run: at most `limit` at once, in the order they were launched.

    A launcher stops itself (SIGSTOP) when it is ready to run its task (its script read, its
    dir entered); the kernel tells its parent, this process. The spawner tells the order it
    forked them in (`told`). When fewer than `limit` admitted launchers are alive, the first
    one launched that waits is admitted: continued (SIGCONT) if it has stopped already, else
    the moment it stops (a slot held for the millisecond it takes to get there; admitting in
    stop order instead would let a task launched later overtake one that got there second).
    One that someone else continued (a `task kill` sends SIGCONT after SIGTERM) counts as
    admitted; one never told of (stopped before its line was read) queues as it stops."""

    def __init__(self, limit: int):
        self.limit = limit
        self.admitted: set[int] = set()
        self.queue: collections.deque[int] = collections.deque()  # launched, waiting, in order
        self.stopped_ones: set[int] = set()  # those of the queue that have stopped
        self.ahead: set[int] = set()  # admitted before they stopped: continued when they do
        self.told_of: set[int] = set()  # the launchers the spawner told of that wait for a slot, alive

    def told(self, data: bytes) -> bytes:
        """Lines `pid queued` from the spawner, in launch order: a launcher that does not wait
        for a slot takes one at once. Returns what follows the last whole line."""
        *lines, rest = data.split(b"\n")
        for line in lines:
            pid, _, queued = line.partition(b" ")
            if queued == b"0":
                self.admitted.add(int(pid))
            elif queued == b"1":
                self.queue.append(int(pid))
                self.told_of.add(int(pid))
        if lines:
            self._admit()
        return rest

    def stopped(self, pid: int) -> None:
        if pid in self.ahead:  # admitted while on its way here
            self.ahead.discard(pid)
            self._continue(pid)
            return
        if pid in self.admitted or pid in self.stopped_ones:
            return  # stopped again (by someone else): not ours to continue
        if pid not in self.queue:
            self.queue.append(pid)
        self.stopped_ones.add(pid)
        self._admit()

    def continued(self, pid: int) -> None:
        if pid in self.queue:
            self.queue.remove(pid)
            self.stopped_ones.discard(pid)
            self.admitted.add(pid)

    def exited(self, pid: int) -> None:
        self.told_of.discard(pid)
        if pid in self.admitted:
            self.admitted.discard(pid)
            self.ahead.discard(pid)
            self._admit()
        elif pid in self.queue:
            self.queue.remove(pid)
            self.stopped_ones.discard(pid)

    def _admit(self) -> None:
        while self.queue and len(self.admitted) < self.limit:
            pid = self.queue.popleft()
            self.admitted.add(pid)
            if pid in self.stopped_ones:
                self.stopped_ones.discard(pid)
                self._continue(pid)
            else:
                self.ahead.add(pid)

    def _continue(self, pid: int) -> None:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:  # gone: its exit frees the slot when it is reaped
            pass


def _read_all(fd: int) -> bytes:
    chunks = []
    try:
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    except BlockingIOError:
        pass
    return b"".join(chunks)


def _leads_its_group(pid: int) -> bool:
    """A launcher leads its process group; an orphan of a user's step re-parented here does not."""
    try:
        return os.getpgid(pid) == pid
    except OSError:
        return False


IO_FIELDS = (b"rchar", b"wchar", b"read_bytes", b"write_bytes")


def read_io(pid: int) -> bytes:
    """`rchar wchar read_bytes write_bytes` of an exited (not yet reaped) process's tree
    (one open, read and close: no file object, on the way of every launcher)."""
    try:
        fd = os.open(b"/proc/%d/io" % pid, os.O_RDONLY)
        try:
            data = os.read(fd, 4096)
        finally:
            os.close(fd)
        counters = dict(line.split(b": ", 1) for line in data.splitlines() if b": " in line)
        return b" ".join(counters[k].strip() for k in IO_FIELDS)
    except (OSError, KeyError, ValueError):
        return b"- - - -"


if __name__ == "__main__":
    main()
