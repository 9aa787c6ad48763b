"""Launchers handed to the reaper ahead of a free slot (executors/reaper.py, Admission): a
local run keeps up to five times -j tasks launched, never runs more than -j at once, and a launcher
still waiting for its slot can be killed, or outlive its orchestrator and its reaper."""
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
    # 10 were launched at once: 8 of them waited at the reaper for a slot (logging `queued`)
    first = [i for i in range(14) if launched[f"t-{i}"] == min(launched.values())]
    waited = [i for i in first if spans[i]["start"] - launched[f"t-{i}"] > 0.2]
    assert len(first) == 10 and len(waited) == 8 and all("queued" in spans[i] for i in waited), (spans, launched)
    # the other 4 went in one batch, once 4 slots had freed (not one launch per ending)
    later = sorted({launched[f"t-{i}"] for i in range(14) if i not in first})
    assert len(later) == 1, launched


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
