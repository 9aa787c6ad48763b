"""One orchestrator per instance: a lock on .drypipe/orchestrator.lock, held for the run.

Commands that change task states (run, restart, task) take it with InstanceLock; readers
(status, list-states, Instance.running_orchestrator(), the read-only engine of state/db.py)
only ask `holder_pid` whether a run is live.

Why an OFD lock, probed with F_OFD_GETLK: the probe must never make a run fail. It used to take
a shared flock for an instant, and a `drypipe run` starting at that instant got EWOULDBLOCK and
was refused as "another orchestrator is running". Now the holder takes a Linux open file
description (OFD) write lock on the whole file (fcntl F_OFD_SETLK), and readers ask the kernel
with F_OFD_GETLK, which reports a conflicting lock and never takes one: a probe holds nothing
a run could collide with, whatever the timing, so no retry (and no delay) is needed.

Like flock, and unlike classic POSIX fcntl locks, an OFD lock belongs to the open file, not to
the process: a probe made in the holder's own process (its fd closed after) does not drop it;
the fd is O_CLOEXEC so launched tasks do not inherit it; and the kernel drops it when the
holder dies, so a kill -9 never leaves a stale lock. OFD locks have no owner pid (GETLK
reports -1): the holder writes its pid in the file, which readers return.

Where OFD locks are missing (not Linux, or a kernel older than 3.15), flock is used as before;
there the probe takes a shared flock for an instant, so acquire() retries EWOULDBLOCK for
FLOCK_RETRY_S before refusing: a probe holds it for microseconds, an orchestrator for its run.
"""
from __future__ import annotations

import errno
import fcntl
import os
import struct
import time

from ..errors import InstanceError

LOCK_NAME = "orchestrator.lock"
FLOCK_RETRY_S = 0.5

__all__ = ["LOCK_NAME", "InstanceLock", "holder_pid", "lock_path"]

_F_OFD_SETLK = getattr(fcntl, "F_OFD_SETLK", None)
_F_OFD_GETLK = getattr(fcntl, "F_OFD_GETLK", None)
# struct flock {short l_type; short l_whence; off_t l_start; off_t l_len; pid_t l_pid;}, in the
# native layout (Python is built with a 64-bit off_t); padded so that the kernel never reads
# past the buffer whatever the trailing padding of the C struct
_FLOCK = struct.Struct("hhqqi")
_PAD = bytes(32)
_ofd = [_F_OFD_SETLK is not None]  # False once the kernel refused OFD locks (EINVAL)


def lock_path(instance_dir: str, name: str = LOCK_NAME) -> str:
    return os.path.join(instance_dir, ".drypipe", name)


def _ofd_call(fd: int, cmd: int, l_type: int) -> int:
    """fcntl(fd, cmd, {l_type, whole file, l_pid=0}) -> the l_type the kernel returns."""
    arg = _FLOCK.pack(l_type, os.SEEK_SET, 0, 0, 0) + _PAD
    return _FLOCK.unpack_from(fcntl.fcntl(fd, cmd, arg))[0]


def _try_lock(fd: int) -> bool:
    """An exclusive lock on fd's file, without waiting: True when taken."""
    if _ofd[0]:
        try:
            _ofd_call(fd, _F_OFD_SETLK, fcntl.F_WRLCK)
            return True
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.EACCES):
                return False
            if e.errno != errno.EINVAL:
                raise
            _ofd[0] = False  # no OFD locks in this kernel
    deadline = time.monotonic() + FLOCK_RETRY_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)


def _is_locked(fd: int) -> bool:
    """Whether another open file holds a lock on fd's file; takes no lock when OFD locks exist."""
    if _ofd[0]:
        try:
            return _ofd_call(fd, _F_OFD_GETLK, fcntl.F_WRLCK) != fcntl.F_UNLCK
        except OSError as e:
            if e.errno != errno.EINVAL:
                raise
            _ofd[0] = False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    fcntl.flock(fd, fcntl.LOCK_UN)
    return False


class InstanceLock:
    """The orchestrator's lock on an instance (or, named service.lock, a service's on its home)."""

    def __init__(self, instance_dir: str, name: str = LOCK_NAME, holder: str = "drypipe orchestrator",
                 where: str = "this instance"):
        self.path = lock_path(instance_dir, name)
        self.holder, self.where = holder, where
        self.fd: int | None = None

    def acquire(self) -> "InstanceLock":
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            taken = _try_lock(fd)
        except BaseException:
            os.close(fd)
            raise
        if not taken:
            holder = _read_pid(fd)
            os.close(fd)
            who = f" (pid {holder})" if holder else ""
            raise InstanceError(f"{os.path.dirname(os.path.dirname(self.path))}: another {self.holder} "
                                f"is running on {self.where}{who}")
        # overwrite, then cut: a reader never sees the file empty
        data = f"{os.getpid()}\n".encode()
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> "InstanceLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def holder_pid(instance_dir: str, name: str = LOCK_NAME) -> int | None:
    """The pid of the orchestrator running on the instance (-1 when its pid is not readable),
    or None when none is. Never takes a lock where OFD locks exist: see the module's doc."""
    try:
        fd = os.open(lock_path(instance_dir, name), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        if not _is_locked(fd):
            return None
        return _read_pid(fd) or -1
    finally:
        os.close(fd)


def _read_pid(fd: int) -> int | None:
    try:
        data = os.pread(fd, 32, 0).decode().strip()
        return int(data) if data else None
    except (OSError, ValueError):
        return None
