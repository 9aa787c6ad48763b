"""Crash safety: SIGKILL the orchestrator at random moments, again and again, restarting
`drypipe run` each time. The end result must be a clean run's, no task may run twice, tasks
running at a kill must be re-attached, a task that died meanwhile must be marked killed (and
rerun by --restart-failed), and every state file must agree with the database.

`make torture` runs it long: DRYPIPE_TORTURE_KILLS kills (default 12) of a pipeline of
2 * CRASH_N + 2 tasks (default CRASH_N=120). The figures (kills, tasks re-attached, tasks run
twice, tasks lost) are printed, and appended as a JSON line to DRYPIPE_TORTURE_REPORT if set."""
import json
import math
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

from conftest import REPO, drypipe, state_files, wait_until

GEN = "tests.pipelines.crash:dag"
N = int(os.environ.get("CRASH_N", "120"))
KILLS = int(os.environ.get("DRYPIPE_TORTURE_KILLS", "12"))
MIN_KILLS = math.ceil(KILLS * 10 / 12)  # 10 of 12: the pipeline may end a little early
EXPECTED_TOTAL = sum(6 * i for i in range(N))  # post.i = v + r = 2 * 3i
EXPECTED_KEYS = {"prep", "total"} | {f"{s}.{i}" for s in ("work", "post") for i in range(N)}


def report(figures):
    """Print the figures, and append them as a JSON line to $DRYPIPE_TORTURE_REPORT."""
    f = figures
    print(f"\ncrash-safety test: {f['kills']} orchestrator kills, {f['reattached']} tasks re-attached, "
          f"{f['twice']} tasks run twice, {f['lost']} tasks lost (CRASH_N={f['crash_n']}, "
          f"{f['completed_at_last_kill']}/{f['tasks']} completed at the last kill, {f['seconds']}s)"
          + (f"\nFAILED: {f['failure']}" if f["failure"] else ""))
    path = os.environ.get("DRYPIPE_TORTURE_REPORT")
    if path:
        with open(path, "a") as out:
            out.write(json.dumps(figures) + "\n")


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
    figures = {"test": "crash_safety", "crash_n": N, "tasks": len(EXPECTED_KEYS), "kills": 0, "reattached": 0,
               "completed_at_last_kill": 0, "twice": None, "lost": None, "seconds": None, "failure": None}
    t0 = time.monotonic()
    try:
        killed_at_random_moments(tmp_path / "inst", figures)
    except BaseException as e:
        figures["failure"] = f"{type(e).__name__}: {e}"[:2000]
        raise
    finally:
        figures["seconds"] = round(time.monotonic() - t0, 1)
        report(figures)


def killed_at_random_moments(inst, figures):
    rng = random.Random(int(os.environ.get("CRASH_SEED", "7")))
    env = dict(os.environ, CRASH_N=str(N))
    kills, murdered, reattached = 0, None, 0
    for _ in range(5 * KILLS):
        if kills >= KILLS:
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
                figures["kills"] = kills
                figures["completed_at_last_kill"] = completed_count(inst)
            proc.wait()
        if proc.returncode == 0:
            break
        running = running_tasks(inst)
        reattached += len(running)
        figures["reattached"] = reattached
        if kills == min(5, KILLS) and running and murdered is None:
            # a task dies while no orchestrator watches it (as in a reboot)
            murdered = running[0]
            os.killpg(launcher_pid(inst, murdered), signal.SIGKILL)
    assert kills >= MIN_KILLS, f"only {kills} kills: the pipeline finished too fast for the test"
    assert reattached >= MIN_KILLS, "too few tasks were running at the kills to test re-attaching"
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
    states = dict(con.execute("SELECT key, state FROM tasks").fetchall())
    runs = {p.stem: p.read_text().splitlines() for p in (inst / "executions").glob("*.log")}
    # the figures: tasks that ran more often than expected, tasks not completed at the end
    figures["twice"] = sum(len(v) > (2 if k == murdered else 1) for k, v in runs.items())
    figures["lost"] = sum(states.get(k) != "completed" for k in EXPECTED_KEYS)
    assert res.returncode == 0, res

    # the result of a clean run
    total = con.execute("SELECT value FROM output_var JOIN task ON task.id = task_id "
                        "WHERE key='total' AND name='t'").fetchone()[0]
    assert int(total) == EXPECTED_TOTAL
    assert len(states) == 2 * N + 2 and set(states.values()) == {"completed"}

    # no task ran twice, but the one that was killed (and rerun by --restart-failed)
    assert set(runs) == set(states)
    twice = {k: v for k, v in runs.items() if len(v) != (2 if k == murdered else 1)}
    assert not twice, f"tasks run a wrong number of times: {twice}"

    # every state file agrees with the DB
    assert state_files(inst) == {k: ["state.completed"] for k in states}
    assert figures["twice"] == 0 and figures["lost"] == 0, figures


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
