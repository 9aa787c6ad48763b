"""The local executor without pidfds (Linux < 5.3, seccomp, a Python without os.pidfd_open):
the polling fallback of drypipe/executors/local.py, forced here by DRYPIPE_NO_PIDFD=1 or by
faking the failures, since this kernel has pidfds."""
import errno
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from conftest import REPO, drypipe, state_files, wait_until
from drypipe.executors import local
from drypipe.executors.local import LocalExecutor

GEN = "tests.pipelines.no_pidfd"
NO_PIDFD = {"DRYPIPE_NO_PIDFD": "1"}


def run(inst, gen, *extra, env=None, check=None, timeout=300):
    return drypipe("run", "-q", "--pipeline-instance-dir", inst, "--generator", f"{GEN}:{gen}", *extra,
                   cwd=REPO, env=env, check=check, timeout=timeout)


def db_rows(inst):
    con = sqlite3.connect(os.path.join(inst, ".drypipe", "drypipe.db"))
    try:
        return {k: (s, la, ea) for k, s, la, ea in
                con.execute("SELECT key, state, launched_at, ended_at FROM task")}
    finally:
        con.close()


def fake_runtime(tmp_path):
    """A runtime and task scripts the spawner can source: LocalExecutor needs no more."""
    runtime = tmp_path / "runtime.sh"
    runtime.write_text("true\n")
    return str(runtime)


def fake_task(tmp_path, name, body):
    script = tmp_path / f"{name}.sh"
    script.write_text(body + "\n")
    return str(script)


def raise_enosys(pid, flags=0):
    raise OSError(errno.ENOSYS, os.strerror(errno.ENOSYS))


# -- selection --------------------------------------------------------------------------------

def test_pidfd_is_used_when_available(monkeypatch, tmp_path):
    monkeypatch.delenv("DRYPIPE_NO_PIDFD", raising=False)
    if not hasattr(os, "pidfd_open"):
        pytest.skip("this Python has no os.pidfd_open")
    assert LocalExecutor(fake_runtime(tmp_path)).watcher == "pidfd"


def test_env_var_forces_the_fallback(monkeypatch, tmp_path):
    monkeypatch.setenv("DRYPIPE_NO_PIDFD", "1")
    assert LocalExecutor(fake_runtime(tmp_path)).watcher == "poll"
    monkeypatch.setenv("DRYPIPE_NO_PIDFD", "0")  # 0 or empty: not forced
    assert LocalExecutor(fake_runtime(tmp_path)).watcher == ("pidfd" if hasattr(os, "pidfd_open") else "poll")


@pytest.mark.parametrize("err", [errno.ENOSYS, errno.EPERM])
def test_refused_pidfd_open_selects_the_fallback(monkeypatch, tmp_path, err):
    """ENOSYS (kernel < 5.3), EPERM (seccomp)."""
    monkeypatch.delenv("DRYPIPE_NO_PIDFD", raising=False)

    def refuse(pid, flags=0):
        raise OSError(err, os.strerror(err))
    monkeypatch.setattr(os, "pidfd_open", refuse, raising=False)
    assert LocalExecutor(fake_runtime(tmp_path)).watcher == "poll"


def test_missing_pidfd_open_selects_the_fallback(monkeypatch, tmp_path):
    monkeypatch.delenv("DRYPIPE_NO_PIDFD", raising=False)
    monkeypatch.delattr(os, "pidfd_open", raising=False)
    assert LocalExecutor(fake_runtime(tmp_path)).watcher == "poll"


# -- the executor alone, with os.pidfd_open failing with ENOSYS --------------------------------

def test_executor_reports_short_tasks_ended_without_pidfd(monkeypatch, tmp_path):
    monkeypatch.setenv("DRYPIPE_REAPER", "0")  # launched tasks polled too, not reported by a reaper
    monkeypatch.delenv("DRYPIPE_NO_PIDFD", raising=False)
    monkeypatch.setattr(os, "pidfd_open", raise_enosys, raising=False)
    ex = LocalExecutor(fake_runtime(tmp_path), max_parallel=4)
    assert ex.watcher == "poll"
    items = []
    for name, secs in [("a", "0.05"), ("b", "0.3"), ("c", "0")]:
        items.append((name, fake_task(tmp_path, name, f'sleep {secs}; echo $BASHPID > "{tmp_path}/{name}.done"'), 0))
    try:
        pids = ex.launch_many(items)
        assert len(pids) == 3 and ex.running == 3 and ex.capacity() == 1
        ended = {}
        deadline = time.monotonic() + 10
        while len(ended) < 3 and time.monotonic() < deadline:
            for e in ex.wait(5):
                ended[e.key] = time.monotonic()
                # reported only once the task is over: its last command ran
                assert (tmp_path / f"{e.key}.done").exists(), e.key
        assert set(ended) == {"a", "b", "c"}
        assert ex.running == 0 and ex.capacity() == 4 and ex.wait(0.01) == []
        for name, pid in zip("abc", pids):
            assert (tmp_path / f"{name}.done").read_text().strip() == pid
    finally:
        ex.shutdown(kill=True)


def test_fallback_wait_is_prompt_and_honours_its_timeout(monkeypatch, tmp_path):
    monkeypatch.setenv("DRYPIPE_REAPER", "0")  # launched tasks polled too, not reported by a reaper
    monkeypatch.setenv("DRYPIPE_NO_PIDFD", "1")
    ex = LocalExecutor(fake_runtime(tmp_path), max_parallel=4)
    assert ex.watcher == "poll"
    try:
        ex.launch_many([("long", fake_task(tmp_path, "long", "sleep 30"), 0)])
        t0 = time.monotonic()
        assert ex.wait(0.25) == []
        assert 0.24 <= time.monotonic() - t0 < 0.6  # neither early nor much late
        t0 = time.monotonic()
        assert ex.wait(0) == []
        assert time.monotonic() - t0 < 0.05
        t0 = time.monotonic()
        assert ex.wait(1.5) == []  # the interval has backed off to its maximum (100 ms) now
        assert 1.49 <= time.monotonic() - t0 < 2
        # a new task that ends quickly is still seen within milliseconds
        marker = tmp_path / "quick.end"
        ex.launch_many([("quick", fake_task(tmp_path, "quick", f'sleep 0.05; : > "{marker}"'), 0)])
        ended = ex.wait(10)
        late = time.time() - marker.stat().st_mtime
        assert [e.key for e in ended] == ["quick"]
        assert late < 0.05, late
        ex.kill_all()  # kill_all reaches polled launchers
        ended = []
        deadline = time.monotonic() + 5
        while not ended and time.monotonic() < deadline:
            ended = ex.wait(1)
        assert [e.key for e in ended] == ["long"] and ex.running == 0
    finally:
        ex.shutdown(kill=True)


def test_orchestrator_in_process_with_enosys(monkeypatch, tmp_path):
    """The whole engine, in this process, with os.pidfd_open failing with ENOSYS."""
    from drypipe import DryPipe
    from drypipe.scheduler.orchestrator import Orchestrator
    from tests.pipelines.no_pidfd import chain_and_independent
    monkeypatch.delenv("DRYPIPE_NO_PIDFD", raising=False)
    monkeypatch.setattr(os, "pidfd_open", raise_enosys, raising=False)
    monkeypatch.setenv("CHAIN", "5")
    monkeypatch.setenv("INDEP", "5")
    inst = tmp_path / "inst"
    umask = os.umask(0o022)
    os.umask(umask)
    try:
        with Orchestrator(str(inst), DryPipe.create_pipeline(chain_and_independent), max_parallel=3) as orch:
            assert orch.local.watcher == "poll"
            result = orch.run()
    finally:
        os.umask(umask)
    assert result.ok and result.total == 10
    assert {s for s, _, _ in db_rows(inst).values()} == {"completed"}
    assert (inst / "output" / "c-4" / "out.txt").read_text().split() == [str(i) for i in range(5)]


# -- the real CLI ------------------------------------------------------------------------------

def test_cli_chain_and_independent_tasks_with_no_pidfd(instance_dir):
    t0 = time.monotonic()
    res = run(instance_dir, "chain_and_independent", env=NO_PIDFD, check=True)
    elapsed = time.monotonic() - t0
    assert "Traceback" not in res.stderr
    rows = db_rows(instance_dir)
    assert len(rows) == 40 and {s for s, _, _ in rows.values()} == {"completed"}
    assert state_files(instance_dir) == {k: ["state.completed"] for k in rows}
    assert (instance_dir / "output" / "c-19" / "out.txt").read_text().split() == [str(i) for i in range(20)]
    assert (instance_dir / "output" / "i-19" / "out.txt").read_text() == "19\n"
    assert elapsed < 30, elapsed  # ~2 s here: no multi-second polling sleeps


def test_dependent_task_starts_promptly_with_no_pidfd(instance_dir):
    """A pure chain: each link is launched within milliseconds of its upstream's end, although
    the end is found by polling."""
    run(instance_dir, "chain_and_independent", env={"CHAIN": "15", "INDEP": "0", **NO_PIDFD}, check=True)
    rows = db_rows(instance_dir)
    gaps = sorted(rows[f"c-{i}"][1] - rows[f"c-{i - 1}"][2] for i in range(1, 15))
    assert gaps[len(gaps) // 2] < 0.05 and gaps[-1] < 0.5, gaps


def test_cli_without_os_pidfd_open(tmp_path):
    """A Python whose os module has no pidfd_open: the run completes, no traceback."""
    inst = tmp_path / "inst"
    wrapper = tmp_path / "no_pidfd_open.py"
    wrapper.write_text(
        "import os, sys\n"
        "del os.pidfd_open\n"
        "from drypipe.cli.main import main\n"
        "sys.argv[0] = 'drypipe'\n"
        "main()\n")
    env = {k: v for k, v in os.environ.items() if k != "DRYPIPE_NO_PIDFD"}
    env.update(CHAIN="5", INDEP="10")
    proc = subprocess.run([sys.executable, str(wrapper), "run", "-q", "--pipeline-instance-dir", str(inst),
                           "--generator", f"{GEN}:chain_and_independent"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc
    assert "Traceback" not in proc.stderr, proc.stderr
    rows = db_rows(inst)
    assert len(rows) == 15 and {s for s, _, _ in rows.values()} == {"completed"}


def test_crash_reattach_with_no_pidfd(tmp_path):
    """SIGKILL the orchestrator while a task runs; the next run (no pidfd either) re-attaches
    to the launcher it never started, sees it end, and the task ran once."""
    inst = tmp_path / "inst"
    runs = tmp_path / "runs.txt"  # outside the instance dir
    env = dict(os.environ, RUNS_FILE=str(runs), SLEEP="3", **NO_PIDFD)
    proc = subprocess.Popen([sys.executable, "-m", "drypipe", "run", "-q", "--pipeline-instance-dir", str(inst),
                             "--generator", f"{GEN}:slow_once"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: list((inst / ".drypipe" / "slow").glob("state.step-started.*"))
                   or proc.poll() is not None, timeout=30, what="the task's step to start")
        assert proc.poll() is None, "the orchestrator ended before the kill"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    t0 = time.monotonic()
    res = drypipe("run", "-q", "--pipeline-instance-dir", inst, "--generator", f"{GEN}:slow_once",
                  cwd=REPO, env={"RUNS_FILE": str(runs), "SLEEP": "3", **NO_PIDFD}, timeout=60)
    assert res.returncode == 0, res
    assert "Traceback" not in res.stderr
    assert time.monotonic() - t0 < 15  # re-attached and woken by the end, not by a long timeout
    assert {k: s for k, (s, _, _) in db_rows(inst).items()} == {"slow": "completed"}
    assert (inst / "output" / "slow" / "f.txt").read_text() == "done\n"
    assert len(runs.read_text().splitlines()) == 1, runs.read_text()
    assert state_files(inst) == {"slow": ["state.completed"]}
