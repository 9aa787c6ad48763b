"""Launchers handed to the reaper ahead of a free slot (executors/reaper.py, Admission): a
local run keeps up to two batches and 2 x -j tasks beyond -j launched, never runs more than -j
at once, and a launcher still waiting for its slot can be killed, or outlive its orchestrator
and its reaper."""
import os
import signal
import sqlite3
import subprocess
import sys

from conftest import REPO, drypipe, wait_until
from test_engine import assert_state_files_match_db, db_states

GEN = "tests.pipelines.admission:sleepers"


def log_times(inst, key):
    """event -> time, from the task's drypipe.log."""
    out = {}
    for line in (inst / ".drypipe" / key / "drypipe.log").read_text().splitlines():
        _, t, event = line.split(" ", 2)
        out[event.split(" ")[0]] = float(t)
    return out


def test_never_more_than_j_running_and_the_next_one_is_already_launched(instance_dir):
    drypipe("run", "-q", "-j", "2", "-pid", instance_dir, "--generator", GEN, cwd=REPO,
            env={"N_TASKS": "14"}, check=True)
    spans = [log_times(instance_dir, f"t-{i}") for i in range(14)]
    events = sorted([(s["start"], 1) for s in spans] + [(s["completed"], -1) for s in spans])
    at_once, most = 0, 0
    for _, d in events:
        at_once += d
        most = max(most, at_once)
    assert most == 2
    con = sqlite3.connect(instance_dir / ".drypipe" / "drypipe.db")
    launched = dict(con.execute("SELECT key, launched_at FROM task"))
    # a first launch of 2 x -j, so that tasks start at once; then, with no wait for an ending,
    # the 10 others in one batch (one fork of the spawner), all but 2 x -j beyond -j that it
    # would have launched (two batches of 16 and 2 x -j may wait for a slot)
    times = sorted(set(launched.values()))
    first = [i for i in range(14) if launched[f"t-{i}"] == times[0]]
    assert len(times) == 2 and len(first) == 4, launched
    assert times[1] < min(s["completed"] for s in spans), (times, spans)
    # the 12 launched while both slots were taken waited at the reaper (logging `queued`)
    waited = [i for i in range(14) if spans[i]["start"] - launched[f"t-{i}"] > 0.2]
    assert len(waited) == 12 and all("queued" in spans[i] for i in waited), (spans, launched)


def _start(inst, *args, env=None):
    return subprocess.Popen([sys.executable, "-m", "drypipe", "run", "-q", *args, "-pid", str(inst),
                             "--generator", GEN], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ, **(env or {})), start_new_session=True)


def _pid(inst, key):
    if not (inst / ".drypipe" / "drypipe.db").exists():
        return None
    con = sqlite3.connect(inst / ".drypipe" / "drypipe.db")
    try:
        row = con.execute("SELECT job_id FROM task WHERE key = ?", (key,)).fetchone()
    finally:
        con.close()
    return int(row[0]) if row and row[0] else None


def _stopped(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "T"
    except FileNotFoundError:
        return False


def _waiting(inst, keys):
    """The keys among keys whose launcher is stopped, waiting for a slot."""
    return [k for k in keys if (pid := _pid(inst, k)) and _stopped(pid)]


def test_a_task_waiting_for_its_slot_can_be_killed(instance_dir):
    proc = _start(instance_dir, "-j", "1", env={"N_TASKS": "2", "SLEEP": "30"})
    keys = ["t-0", "t-1"]
    try:
        (waiting,) = wait_until(lambda: _waiting(instance_dir, keys), what="a task waiting for its slot")
        (running,) = set(keys) - {waiting}
        subprocess.run([str(instance_dir / ".drypipe" / waiting / "task"), "kill"], check=True, timeout=10)
        wait_until(lambda: db_states(instance_dir)[waiting].startswith("killed"), what=f"{waiting} killed")
        subprocess.run([str(instance_dir / ".drypipe" / running / "task"), "kill"], check=True, timeout=10)
        proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert db_states(instance_dir) == {"t-0": "killed.0", "t-1": "killed.0"}
    assert (instance_dir / "ran.txt").read_text().split() == [running]  # the other never ran its step
    assert_state_files_match_db(instance_dir)


def test_waiting_launchers_survive_their_orchestrator_and_reaper_and_run_once(instance_dir):
    proc = _start(instance_dir, "-j", "1", env={"N_TASKS": "3", "SLEEP": "1"})
    keys = ["t-0", "t-1", "t-2"]
    try:
        waiting = wait_until(lambda: _waiting(instance_dir, keys), what="a task waiting for its slot")[0]
        pid = _pid(instance_dir, waiting)
        reaper = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
        os.killpg(proc.pid, signal.SIGKILL)  # the orchestrator
        os.kill(reaper, signal.SIGKILL)  # and the reaper that would have admitted them
        proc.communicate(timeout=30)
    finally:
        proc.kill()
    res = drypipe("run", "-q", "-j", "1", "-pid", instance_dir, "--generator", GEN, cwd=REPO,
                  env={"N_TASKS": "3", "SLEEP": "1"}, check=True)
    assert db_states(instance_dir) == {k: "completed" for k in keys}, res
    assert sorted((instance_dir / "ran.txt").read_text().split()) == keys  # each ran once
    assert_state_files_match_db(instance_dir)


def test_the_spawner_runs_with_a_malloc_tunable_that_tasks_do_not_see(instance_dir):
    """The launchers are forks of a bash started with glibc's malloc thread cache enlarged
    (executors/spawner.py, TUNABLES: fewer heap pages copied per fork); the variable is gone
    from what a task's commands inherit, and a user's own GLIBC_TUNABLES is left as it is."""
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    drypipe("run", "-q", "-pid", instance_dir, "--generator", "tests.pipelines.admission:environ", cwd=REPO,
            env=env, check=True)
    out = instance_dir / "output" / "e"
    assert "GLIBC_TUNABLES=glibc.malloc.tcache_count=1000" in (out / "start.txt").read_text().splitlines()
    assert "TUNABLES" not in (out / "env.txt").read_text()
    mine = instance_dir.parent / "mine"
    drypipe("run", "-q", "-pid", mine, "--generator", "tests.pipelines.admission:environ", cwd=REPO,
            env={"GLIBC_TUNABLES": "glibc.malloc.check=0"}, check=True)
    lines = (mine / "output" / "e" / "env.txt").read_text().splitlines()
    assert [x for x in lines if "TUNABLES" in x] == ["GLIBC_TUNABLES=glibc.malloc.check=0"]


def test_a_warm_spawner_is_the_one_that_launches_and_an_unused_one_goes(tmp_path):
    """LocalExecutor.warm() starts the spawner and its reaper ahead (a run's generation
    overlaps their start); the first launch uses that one, and shutdown ends one never used."""
    from drypipe.executors.local import LocalExecutor
    from drypipe.scheduler.materialize import Materializer
    runtime = Materializer(str(tmp_path), str(tmp_path), None, None).install_runtime()
    script = tmp_path / "task"
    script.write_text("exit 0\n")
    ex = LocalExecutor(runtime, max_parallel=2)
    ex.warm()
    warm = ex._warm.proc
    pids = ex.launch_many([("k", str(script), 0)])
    assert ex._spawner.proc is warm and ex._warm is None
    assert wait_until(lambda: ex.wait(0.5), what="the launch to end")[0].key == "k" and pids
    ex.shutdown(kill=False)
    unused = LocalExecutor(runtime, max_parallel=2)
    unused.warm()
    proc = unused._warm.proc
    unused.shutdown(kill=False)
    assert proc.poll() is not None  # (waited for: no process left behind)
