"""Crash safety: SIGKILL the orchestrator at random moments, again and again, restarting
`drypipe run` each time. The end result must be a clean run's, no task may run twice, tasks
running at a kill must be re-attached, a task that died meanwhile must be marked killed (and
rerun by --restart-failed), and every state file must agree with the database."""
import os
import random
import signal
import sqlite3
import subprocess
import sys

from conftest import REPO, drypipe, state_files, wait_until

GEN = "tests.pipelines.crash:dag"
N = 120
EXPECTED_TOTAL = sum(6 * i for i in range(N))  # post.i = v + r = 2 * 3i


def completed_count(inst):
    db = inst / ".drypipe" / "drypipe.db"
    if not db.exists():
        return 0
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return con.execute("SELECT count(*) FROM task WHERE state='completed'").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        con.close()


def running_tasks(inst):
    """Keys of tasks whose state file says a step is running."""
    return sorted(p.parent.name for p in (inst / ".drypipe").glob("*/state.step-started.*"))


def launcher_pid(inst, key):
    text = (inst / ".drypipe" / key / "drypipe.log").read_text()
    return int(text.rsplit(" pid=", 1)[1].split()[0])


def test_orchestrator_killed_at_random_moments(tmp_path):
    inst = tmp_path / "inst"
    rng = random.Random(int(os.environ.get("CRASH_SEED", "7")))
    env = dict(os.environ, CRASH_N=str(N))
    kills, murdered, reattached = 0, None, 0
    for _ in range(60):
        if kills >= 12:
            break
        target = completed_count(inst) + rng.randint(1, 20)
        proc = subprocess.Popen([sys.executable, "-m", "drypipe", "run", "-q", "-pid", str(inst),
                                 "--generator", GEN], cwd=REPO, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_until(lambda: (completed_count(inst) >= target and running_tasks(inst)) or
                       proc.poll() is not None, timeout=90, what="progress before the kill")
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            proc.wait()
        if proc.returncode == 0:
            break
        running = running_tasks(inst)
        reattached += len(running)
        if kills == 5 and running and murdered is None:
            # a task dies while no orchestrator watches it (as in a reboot)
            murdered = running[0]
            os.killpg(launcher_pid(inst, murdered), signal.SIGKILL)
    assert kills >= 10, f"only {kills} kills: the pipeline finished too fast for the test"
    assert reattached >= 10, "too few tasks were running at the kills to test re-attaching"
    assert murdered is not None

    res = drypipe("run", "-q", "-pid", inst, "--generator", GEN, cwd=REPO, env={"CRASH_N": str(N)})
    con = sqlite3.connect(inst / ".drypipe" / "drypipe.db")
    states = dict(con.execute("SELECT key, state || coalesce('.' || step, '') FROM tasks").fetchall())
    assert res.returncode == 1 and states[murdered] == "killed.0", (res, states[murdered])
    assert f"{murdered}: killed.0" in res.stderr
    assert {k for k, v in states.items() if v != "completed"} <= {murdered, f"post.{murdered.split('.')[1]}",
                                                                   "total"}
    assert state_files(inst)[murdered] == ["state.killed.0"]

    res = drypipe("run", "-q", "--restart-failed", "-pid", inst, "--generator", GEN, cwd=REPO,
                  env={"CRASH_N": str(N)})
    assert res.returncode == 0, res

    # the result of a clean run
    total = con.execute("SELECT value FROM output_var JOIN task ON task.id = task_id "
                        "WHERE key='total' AND name='t'").fetchone()[0]
    assert int(total) == EXPECTED_TOTAL
    states = dict(con.execute("SELECT key, state FROM tasks").fetchall())
    assert len(states) == 2 * N + 2 and set(states.values()) == {"completed"}

    # no task ran twice, but the one that was killed (and rerun by --restart-failed)
    runs = {p.stem: p.read_text().splitlines() for p in (inst / "executions").glob("*.log")}
    assert set(runs) == set(states)
    twice = {k: v for k, v in runs.items() if len(v) != (2 if k == murdered else 1)}
    assert not twice, f"tasks run a wrong number of times: {twice}"

    # every state file agrees with the DB
    assert state_files(inst) == {k: ["state.completed"] for k in states}


def test_killed_before_anything_was_committed(tmp_path):
    """A kill right after start leaves an instance the next run completes."""
    inst = tmp_path / "inst"
    proc = subprocess.Popen([sys.executable, "-m", "drypipe", "run", "-q", "-pid", str(inst),
                             "--generator", GEN], cwd=REPO, env=dict(os.environ, CRASH_N="5"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: (inst / ".drypipe").exists(), what="the instance dir")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    res = drypipe("run", "-q", "-pid", inst, "--generator", GEN, cwd=REPO, env={"CRASH_N": "5"})
    assert res.returncode == 0, res
    assert all(len(p.read_text().splitlines()) == 1 for p in (inst / "executions").glob("*.log"))
