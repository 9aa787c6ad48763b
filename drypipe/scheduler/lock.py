"""One orchestrator per instance: an flock on .drypipe/orchestrator.lock, held for the run.

Commands that change task states (run, restart, task) take it; readers (status, list-states)
only test it to tell whether a run is live. The kernel drops it when the holder dies, so a
kill -9 never leaves a stale lock."""
from __future__ import annotations

import fcntl
import os

from ..errors import InstanceError

LOCK_NAME = "orchestrator.lock"


class InstanceLock:
    def __init__(self, instance_dir: str):
        self.path = os.path.join(instance_dir, ".drypipe", LOCK_NAME)
        self.fd: int | None = None

    def acquire(self) -> "InstanceLock":
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            who = f" (pid {holder})" if holder else ""
            raise InstanceError(f"{os.path.dirname(os.path.dirname(self.path))}: another drypipe "
                                f"orchestrator is running on this instance{who}") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def holder_pid(instance_dir: str) -> int | None:
    """The pid of the orchestrator running on the instance, or None when none is."""
    path = os.path.join(instance_dir, ".drypipe", LOCK_NAME)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _read_pid(fd) or -1
    finally:
        os.close(fd)
    return None


def _read_pid(fd: int) -> int | None:
    try:
        data = os.pread(fd, 32, 0).decode().strip()
        return int(data) if data else None
    except (OSError, ValueError):
        return None
