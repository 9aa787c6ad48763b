"""The orchestrator lock (drypipe/state/lock.py): one orchestrator per instance, and readers
that ask whether one runs (holder_pid) never make a run fail."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import REPO, drypipe, wait_until
from drypipe.errors import InstanceError
from drypipe.state.lock import InstanceLock, holder_pid

PROBER = textwrap.dedent("""
    import os, sys
    from drypipe.state.lock import holder_pid
    inst, stop = sys.argv[1], sys.argv[2]
    held = free = 0
    print("ready", flush=True)
    while not os.path.exists(stop):
        for _ in range(50):
            if holder_pid(inst) is None:
                free += 1
            else:
                held += 1
    print(held, free, flush=True)
""")

HOLDER = textwrap.dedent("""
    import sys, time
    from drypipe.state.lock import InstanceLock
    InstanceLock(sys.argv[1]).acquire()
    print("held", flush=True)
    time.sleep(600)
""")


@pytest.fixture
def inst(tmp_path) -> str:
    (tmp_path / "inst" / ".drypipe").mkdir(parents=True)
    return str(tmp_path / "inst")


def python(code: str, *args, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, **kw)


class Probers:
    """n processes calling holder_pid(inst) in a tight loop, until stopped."""

    def __init__(self, inst: str, tmp: Path, n: int = 2):
        self.stop_file = tmp / "stop-probing"
        self.procs = [python(PROBER, inst, self.stop_file) for _ in range(n)]
        for p in self.procs:
            assert p.stdout.readline() == "ready\n"

    def stop(self) -> tuple[int, int]:
        """(probes that saw the lock held, probes that saw it free), over all probers."""
        self.stop_file.touch()
        held = free = 0
        for p in self.procs:
            out, _ = p.communicate(timeout=60)
            assert p.returncode == 0, out
            h, f = map(int, out.split())
            held, free = held + h, free + f
        return held, free

    def kill(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def test_probes_never_make_acquire_fail(inst, tmp_path):
    """2000 acquire/release while two processes probe: the probes see the lock held and free,
    and never make an acquire fail (they used to take a shared flock for an instant, refusing
    a run starting at that instant as "another orchestrator is running")."""
    probers = Probers(inst, tmp_path)
    refused = []
    try:
        for i in range(2000):
            try:
                lock = InstanceLock(inst).acquire()
            except InstanceError as e:
                refused.append((i, str(e)))
                continue
            lock.release()
        held, free = probers.stop()
    finally:
        probers.kill()
    assert refused == [], f"{len(refused)} of 2000 acquires refused, first: {refused[0]}"
    assert held > 0 and free > 0, (held, free)


def test_holder_pid_while_held_and_after_release(inst):
    assert holder_pid(inst) is None  # no lock file yet
    lock = InstanceLock(inst).acquire()
    try:
        assert holder_pid(inst) == os.getpid()
        assert holder_pid(inst) == os.getpid()  # a probe in the holder's own process keeps it held
        other = subprocess.run([sys.executable, "-c", "import sys\nfrom drypipe.state.lock import InstanceLock\n"
                                "InstanceLock(sys.argv[1]).acquire()", inst], cwd=REPO, capture_output=True,
                               text=True, timeout=60)
        assert other.returncode != 0 and f"another drypipe orchestrator is running on this instance " \
            f"(pid {os.getpid()})" in other.stderr, other.stderr
    finally:
        lock.release()
    assert holder_pid(inst) is None
    assert (Path(inst) / ".drypipe" / "orchestrator.lock").read_text() == f"{os.getpid()}\n"
    InstanceLock(inst).acquire().release()  # and it can be taken again


def test_holder_pid_of_another_process_and_after_it_is_killed(inst):
    proc = python(HOLDER, inst)
    try:
        assert proc.stdout.readline() == "held\n"
        assert holder_pid(inst) == proc.pid
        with pytest.raises(InstanceError, match=rf"another drypipe orchestrator .* \(pid {proc.pid}\)"):
            InstanceLock(inst).acquire()
        assert holder_pid(inst) == proc.pid  # a refused acquire does not drop the holder's lock
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert holder_pid(inst) is None  # the kernel dropped it; the stale pid in the file is ignored
    assert (Path(inst) / ".drypipe" / "orchestrator.lock").read_text().strip() == str(proc.pid)
    lock = InstanceLock(inst).acquire()
    assert holder_pid(inst) == os.getpid()
    lock.release()


def test_the_old_import_path_still_works():
    from drypipe.scheduler import lock as old
    from drypipe.state import lock as new
    assert old.InstanceLock is new.InstanceLock and old.holder_pid is new.holder_pid
    assert old.LOCK_NAME == new.LOCK_NAME == "orchestrator.lock"


def test_drypipe_run_is_never_refused_because_of_readers(tmp_path):
    """The same at the CLI level: `drypipe run` (on a finished instance: it only takes the lock,
    generates and exits) while processes probe like `drypipe status` does."""
    inst = tmp_path / "inst"
    gen = ["--generator", "tests.pipelines.bad_input:good"]
    drypipe("run", "-q", "--pipeline-instance-dir", inst, *gen, cwd=REPO, check=True)
    probers = Probers(str(inst), tmp_path, n=3)
    try:
        for _ in range(8):
            res = drypipe("run", "-q", "--pipeline-instance-dir", inst, *gen, cwd=REPO)
            assert res.returncode == 0 and "another drypipe orchestrator" not in res.stderr, res
        status = drypipe("status", "--pipeline-instance-dir", inst, cwd=REPO)
        assert status.returncode == 0, status
        probers.stop()
    finally:
        probers.kill()
    wait_until(lambda: holder_pid(str(inst)) is None, what="no orchestrator left")
