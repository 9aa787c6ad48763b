"""The reaper (drypipe/executors/reaper.py): the parent of local launchers, which reaps each one
with wait4 and reports its exit status and the rusage of its reaped tree. Driven here through
LocalExecutor with real processes."""
import os
import signal
import time

import pytest

from conftest import wait_until
from drypipe.executors.local import LocalExecutor
from drypipe.scheduler.attempts import with_rusage
from test_no_pidfd import fake_runtime, fake_task

MB = 1024 * 1024


def wait_all(ex, n, timeout=30):
    ended, deadline = {}, time.monotonic() + timeout
    while len(ended) < n and time.monotonic() < deadline:
        for e in ex.wait(1):
            ended[e.key] = e
    assert len(ended) == n, ended
    return ended


def reaper_pid(ex):
    return ex._spawner.proc.pid


def parent(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


@pytest.fixture
def ex(tmp_path, monkeypatch):
    monkeypatch.delenv("DRYPIPE_REAPER", raising=False)
    ex = LocalExecutor(fake_runtime(tmp_path), max_parallel=8)
    yield ex
    ex.shutdown(kill=True)
    ex.close()


def test_the_reaper_reports_exit_status_peak_memory_and_cpu(ex, tmp_path):
    alloc = f"{os.sys.executable} -c \"b = bytearray(120 * {MB}); b[::4096] = b'x' * len(b[::4096])\""
    ex.launch_many([("alloc", fake_task(tmp_path, "alloc", alloc), 0),
                    ("seven", fake_task(tmp_path, "seven", "exit 7"), 0),
                    ("spin", fake_task(tmp_path, "spin", "i=0; while ((i < 300000)); do ((i++)); done"), 0)])
    assert ex._spawner.reports is not None  # this kernel makes it a subreaper
    ended = wait_all(ex, 3)
    assert ended["alloc"].returncode == 0 and ended["seven"].returncode == 7
    assert 120 * MB <= ended["alloc"].usage["peak_rss"] <= 150 * MB, ended["alloc"].usage
    assert ended["seven"].usage["peak_rss"] < 20 * MB  # a bash, not its neighbour's 120 MB
    spin = ended["spin"].usage
    assert spin["cpu_user"] + spin["cpu_sys"] >= 0.1, spin


def test_launchers_are_the_reapers_children_and_a_killed_one_says_its_signal(ex, tmp_path):
    [pid] = ex.launch_many([("long", fake_task(tmp_path, "long", "sleep 60"), 0)])
    # re-parented as soon as the subshell that forked it exits
    wait_until(lambda: parent(int(pid)) == reaper_pid(ex), timeout=5, what="the launcher re-parented")
    os.killpg(int(pid), signal.SIGKILL)
    ended = wait_all(ex, 1)
    assert ended["long"].returncode == -signal.SIGKILL


def test_when_the_reaper_is_killed_its_tasks_are_still_seen_ending(ex, tmp_path):
    marker = tmp_path / "b.done"
    ex.launch_many([("a", fake_task(tmp_path, "a", "exit 0"), 0),
                    ("b", fake_task(tmp_path, "b", f"sleep 0.5; : > {marker}"), 0)])
    os.kill(reaper_pid(ex), signal.SIGKILL)
    wait_all(ex, 2)
    assert marker.exists() and ex.running == 0
    # launching again starts a new spawner and reaper
    ex.launch_many([("c", fake_task(tmp_path, "c", "exit 3"), 0)])
    assert wait_all(ex, 1)["c"].returncode == 3


def test_orphans_of_steps_are_reaped_and_the_reaper_exits_when_all_is_over(ex, tmp_path):
    orphan_pid = tmp_path / "orphan.pid"
    ex.launch_many([("o", fake_task(tmp_path, "o", f"(sleep 0.3; :) & echo $! > {orphan_pid}"), 0)])
    wait_all(ex, 1)
    reaper = reaper_pid(ex)
    orphan = int(orphan_pid.read_text())
    if os.path.exists(f"/proc/{orphan}"):
        assert parent(orphan) == reaper  # the orphan was re-parented to the reaper, not to init
    ex.shutdown(kill=False)
    # the orphan ends, the reaper reaps it and, with no child left, exits: nothing is left behind
    wait_until(lambda: not os.path.exists(f"/proc/{orphan}"), timeout=10, what="the orphan reaped")
    wait_until(lambda: ex_reaped(reaper), timeout=10, what="the reaper exited")


def ex_reaped(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"  # exited; Popen reaps it later
    except FileNotFoundError:
        return True


def test_with_rusage_completes_the_launchers_own_line():
    line = {"exit": 0, "host": "n1", "cpu_user": 0.01, "cpu_sys": 0.0, "rchar": 5}
    reaped = {"peak_rss": 5 * MB, "cpu_user": 0.0123, "cpu_sys": 0.002}
    assert with_rusage(line, 0, reaped) == {**line, "cpu_user": 0.0123, "cpu_sys": 0.002,
                                            "peak_rss": 5 * MB, "peak_rss_source": "rusage"}
    cgroup = {**line, "peak_rss": 9 * MB, "peak_rss_source": "cgroup"}
    assert with_rusage(cgroup, 0, reaped)["peak_rss"] == 9 * MB  # the tree's sum wins
    assert with_rusage(None, -9, None) == {"exit": 137}  # killed without a word
    assert with_rusage(None, -15, reaped)["exit"] == 143


def test_admission_runs_at_most_limit_in_the_order_they_stopped(monkeypatch):
    from drypipe.executors import reaper
    sent = []
    monkeypatch.setattr(reaper.os, "kill", lambda pid, sig: sent.append((pid, sig)))
    gate = reaper.Admission(2)
    for pid in (11, 12, 13, 14):
        gate.stopped(pid)
    assert sent == [(11, signal.SIGCONT), (12, signal.SIGCONT)] and list(gate.queue) == [13, 14]
    gate.exited(14)  # killed while it waited: it frees no slot
    gate.exited(11)
    assert sent[-1] == (13, signal.SIGCONT) and not gate.queue and gate.admitted == {12, 13}
    gate.stopped(15)
    gate.continued(15)  # `task kill` continued it (after its SIGTERM): it holds a slot until it exits
    gate.stopped(16)
    assert gate.admitted == {12, 13, 15} and list(gate.queue) == [16]
    gate.exited(15)
    gate.exited(12)
    assert sent[-1] == (16, signal.SIGCONT) and gate.admitted == {13, 16}
    gate.stopped(13)  # stopped by someone else once admitted: not continued
    assert sent[-1] == (16, signal.SIGCONT)


def test_admission_follows_the_launch_order_not_the_stop_order(monkeypatch):
    """Launchers stop in whatever order the scheduler lets them get there: a slot goes to the
    first one launched that waits, held for it until it stops if it has not yet."""
    from drypipe.executors import reaper
    sent = []
    monkeypatch.setattr(reaper.os, "kill", lambda pid, sig: sent.append(pid))
    gate = reaper.Admission(1)
    gate.told(b"31 0\n32 1\n33 1\n34 1\n")
    gate.stopped(34)
    gate.stopped(33)
    gate.exited(31)
    assert sent == [] and gate.admitted == {32}  # 32, launched first, has the slot...
    gate.stopped(32)
    assert sent == [32]  # ...and runs the moment it stops
    gate.exited(32)
    assert sent == [32, 33] and list(gate.queue) == [34]
    gate.exited(34)  # killed while it waited
    gate.exited(33)
    assert sent == [32, 33] and not gate.admitted and not gate.queue


def test_admission_counts_the_launchers_that_run_at_once(monkeypatch):
    """A launcher forked while a slot was free runs at once (the spawner says `pid 0`): it holds
    its slot like an admitted one."""
    from drypipe.executors import reaper
    sent = []
    monkeypatch.setattr(reaper.os, "kill", lambda pid, sig: sent.append(pid))
    gate = reaper.Admission(2)
    assert gate.told(b"21 0\n22 0\n23 1\n24") == b"24"  # (a partial line is kept for later)
    gate.stopped(23)
    assert sent == [] and list(gate.queue) == [23]
    gate.exited(21)
    assert sent == [23] and gate.admitted == {22, 23}
