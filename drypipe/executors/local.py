"""Local processes: each task's launcher is a bash process in its own session.

Completion is event-driven: every running task has a pidfd in one selector, so the
orchestrator wakes the moment a task ends, whether it started it or re-attached to it."""
from __future__ import annotations

import os
import selectors
import signal
import subprocess

from .base import Ended, Executor


class LocalExecutor(Executor):
    name = "process"

    def __init__(self, max_parallel: int | None = None):
        self.max_parallel = max_parallel or os.cpu_count() or 1
        self._sel = selectors.DefaultSelector()
        self._procs: dict[int, tuple[str, subprocess.Popen | None, int]] = {}

    def capacity(self) -> int:
        return self.max_parallel - len(self._procs)

    @property
    def running(self) -> int:
        return len(self._procs)

    def launch(self, key: str, task_script: str, start_step: int) -> str:
        proc = subprocess.Popen(["bash", task_script, "run", str(start_step)],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True)
        self._watch(key, proc, proc.pid)
        return str(proc.pid)

    def attach(self, key: str, job_id: str, task_script: str) -> bool:
        pid = int(job_id)
        if not is_launcher_alive(pid, task_script):
            return False
        return self._watch(key, None, pid)

    def _watch(self, key, proc, pid) -> bool:
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            return False
        self._procs[fd] = (key, proc, pid)
        self._sel.register(fd, selectors.EVENT_READ)
        return True

    def wait(self, timeout: float | None) -> list[Ended]:
        if not self._procs:
            return []
        ended = []
        for sk, _ in self._sel.select(timeout):
            fd = sk.fd
            key, proc, pid = self._procs.pop(fd)
            self._sel.unregister(fd)
            os.close(fd)
            rc = proc.wait() if proc is not None else None
            ended.append(Ended(key, rc))
        return ended

    def shutdown(self, kill: bool) -> None:
        for fd, (key, proc, pid) in list(self._procs.items()):
            if kill:
                try:
                    os.killpg(pid, signal.SIGTERM)
                except (ProcessLookupError, PermissionError):
                    pass


def is_launcher_alive(pid: int, task_script: str) -> bool:
    """Is pid a running launcher of task_script (and not a recycled pid)?"""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                return False
    except (FileNotFoundError, IndexError):
        return False
    return task_script.encode() in argv


def find_launchers(instance_dir: str) -> dict[str, int]:
    """Running launchers of this instance's tasks, by task key (a scan of /proc)."""
    prefix = os.path.join(instance_dir, ".drypipe", "").encode()
    found = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if len(argv) >= 3 and argv[0].endswith(b"bash") and argv[1].startswith(prefix) \
                and argv[1].endswith(b"/task") and argv[2] == b"run":
            key = argv[1][len(prefix):-len(b"/task")].decode("utf-8", "surrogateescape")
            found[key] = int(name)
    return found
