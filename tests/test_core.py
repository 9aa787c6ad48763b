"""Defects of the scattered state machine, each reproduced through the real CLI on a real
instance (tests/pipelines/core.py and tests/pipelines/commands.py)."""
import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from conftest import REPO, drypipe, wait_until
from drypipe import Instance

CORE = "tests.pipelines.core"
CMDS = "tests.pipelines.commands"


def dp(*args, **kw):
    return drypipe(*args, cwd=REPO, **kw)


def run(inst, gen, *extra, check=None, mod=CORE):
    return dp("run", "-q", "-pid", inst, "--generator", f"{mod}:{gen}", *extra, check=check)


def executions(inst):
    p = inst / "executions.txt"
    return p.read_text().splitlines() if p.exists() else []


def sql(inst, query, *args):
    con = sqlite3.connect(f"file:{inst}/.drypipe/drypipe.db?mode=ro", uri=True)
    try:
        return con.execute(query, args).fetchall()
    finally:
        con.close()


def snapshot(inst):
    """Every file of the instance (path -> size, mtime, content hash) and dir, SQLite's
    transient -wal and -shm files aside."""
    out = {}
    for root, dirs, files in os.walk(inst):
        for name in dirs + files:
            p = os.path.join(root, name)
            if name.endswith(("-wal", "-shm")):
                continue
            if not os.path.isfile(p):
                out[os.path.relpath(p, inst)] = "dir"  # (its mtime moves with SQLite's -shm)
                continue
            st = os.lstat(p)
            with open(p, "rb") as f:
                digest = hashlib.sha1(f.read()).hexdigest()
            out[os.path.relpath(p, inst)] = (st.st_size, st.st_mtime_ns, digest)
    return out


def start_run(inst, gen, mod=CORE):
    return subprocess.Popen([sys.executable, "-m", "drypipe", "run", "-q", "-pid", str(inst), "--generator",
                             f"{mod}:{gen}"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def state_file(inst, key):
    d = inst / ".drypipe" / key
    names = [p.name[len("state."):] for p in d.iterdir() if p.name.startswith("state.")] if d.is_dir() else []
    return names[0] if len(names) == 1 else names


@pytest.fixture(autouse=True)
def release_waiting_tasks(instance_dir):
    """Whatever a test did, its tasks waiting on a marker file end with it (no stray process)."""
    yield
    if instance_dir.is_dir():
        for marker in ("go", "release-up", "finish-long"):
            (instance_dir / marker).touch()


# ---- --dry-run writes nothing -------------------------------------------------------------------

@pytest.fixture
def failed_instance(instance_dir):
    """fails_with_downstream run once: `up` failed.1, `down` waiting, `ok` completed."""
    run(instance_dir, "fails_with_downstream", check=False, mod=CMDS)
    assert Instance(str(instance_dir)).task("up").state_name == "failed.1"
    return instance_dir


@pytest.mark.parametrize("args", [
    ["run", "--restart-failed"],
    ["run", "--reset-failed"],
    ["run"],
    ["prepare"],
])
def test_dry_run_of_run_and_prepare_writes_nothing(failed_instance, args):
    inst = failed_instance
    (inst / "output" / "up" / "keep.txt").write_text("an output of the failed attempt")
    before = snapshot(inst)
    res = dp("--dry-run", args[0], "-pid", inst, "--generator", f"{CMDS}:fails_with_downstream", *args[1:],
             check=True)
    assert "dry run" in res.stdout
    if "--reset-failed" in args or "--restart-failed" in args:
        assert "up" in res.stdout  # says which task would rerun
    assert snapshot(inst) == before
    assert Instance(str(inst)).task("up").state_name == "failed.1"


def test_dry_run_does_not_insert_newly_generated_tasks(instance_dir):
    dp("prepare", "-pid", instance_dir, "--generator", f"{CORE}:held", check=True)
    before = snapshot(instance_dir)
    res = dp("--dry-run", "run", "-pid", instance_dir, "--generator", f"{CORE}:chain3", check=True)
    assert "1 new" in res.stdout  # c (a and b are known)
    assert snapshot(instance_dir) == before
    assert sorted(t.key for t in Instance(str(instance_dir)).tasks()) == ["a", "b", "c-held"]


def test_dry_run_of_a_new_instance_creates_nothing(tmp_path):
    inst = tmp_path / "never"
    res = dp("--dry-run", "run", "-pid", inst, "--generator", f"{CORE}:chain3", check=True)
    assert "would launch now: 1" in res.stdout and "  a" in res.stdout
    assert not inst.exists()


@pytest.mark.parametrize("args", [["restart", "--task-key", "up"], ["restart", "--task-key", "ok", "--reset"],
                                  ["task", "--task-key", "up"], ["task", "--task-key", "up", "--wait"],
                                  ["sbatch", "--task-key", "up"], ["array-create-parent", "--task-key", "p"],
                                  ["upgrade-drypipe"], ["call", "--task-key", "ok", "os:getcwd"]])
def test_dry_run_of_commands_that_change_an_instance_writes_nothing(failed_instance, args):
    inst = failed_instance
    before = snapshot(inst)
    res = dp("--dry-run", args[0], "-pid", inst, *args[1:], check=True)
    assert "dry run" in res.stdout
    assert snapshot(inst) == before
    assert executions(inst).count("up step0") == 1


# ---- the generator failing on a later call ------------------------------------------------------

def test_a_generator_raising_later_does_not_kill_running_tasks(instance_dir):
    proc = start_run(instance_dir, "generator_raises_later")
    wait_until(lambda: "long step0" in executions(instance_dir) and "first step0" in executions(instance_dir),
               what="both tasks started")
    # the generator has been called again (first completed) and raised: long must go on
    wait_until(lambda: state_file(instance_dir, "first") == "completed", what="first completed")
    time.sleep(0)  # no timing: the next condition is what matters
    (instance_dir / "finish-long").touch()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, err
    assert err.splitlines()[-1].startswith("drypipe: error: ") and "the generator broke on its second call" in err
    assert "Traceback" not in err
    assert Instance(str(instance_dir)).task("long").state_name == "completed"
    assert (instance_dir / "output" / "long" / "long.txt").exists()
    assert executions(instance_dir).count("long step0") == 1


# ---- a new TaskConf moves a failed task to another executer ---------------------------------------

def test_a_failed_task_given_a_slurm_conf_takes_its_executer_type(instance_dir):
    run(instance_dir, "moves_to_slurm", check=False)
    assert sql(instance_dir, "select state, executer_type from tasks where key='t'") == [("failed", "process")]
    (instance_dir / "fixed").touch()
    dp("prepare", "-pid", instance_dir, "--generator", f"{CORE}:moves_to_slurm", check=True)
    assert sql(instance_dir, "select executer_type from tasks where key='t'") == [("slurm",)]


# ---- --until ------------------------------------------------------------------------------------

def test_run_until_does_not_claim_every_task_completed(instance_dir):
    res = run(instance_dir, "held", "--until", "c-*", check=True)
    assert "all 3 tasks completed" not in res.stderr
    assert "held back by --until (not run): c-held" in res.stderr
    assert Instance(str(instance_dir)).task("c-held").state == "ready"
    assert sorted(executions(instance_dir)) == ["a step0", "b step0"]


# ---- prepare writes the launchers of ready tasks; a task run by hand is adopted ------------------

def test_prepare_writes_the_launcher_of_ready_tasks_which_run_by_hand(instance_dir):
    dp("prepare", "-pid", instance_dir, "--generator", f"{CORE}:chain3", check=True)
    launcher = instance_dir / ".drypipe" / "a" / "task"
    assert launcher.exists() and os.access(launcher, os.X_OK)
    assert state_file(instance_dir, "a") == "ready"
    assert not (instance_dir / ".drypipe" / "b").exists()  # waits on a: not launchable yet
    subprocess.run([str(launcher)], check=True, timeout=60)
    assert state_file(instance_dir, "a") == "completed"
    res = run(instance_dir, "chain3", check=True)
    assert "all 3 tasks completed" in res.stderr
    assert executions(instance_dir) == ["a step0", "b step0", "c step0"]  # a ran once, by hand
    trans = Instance(str(instance_dir)).transitions("a")["a"]
    assert [s for s, _, _ in trans] == ["launched", "step-started", "completed"]


def test_prepare_again_adopts_a_task_run_by_hand_and_writes_its_downstreams_launcher(instance_dir):
    """`prepare` links the loaded graph only when something needs it: here the adopted end of a
    makes b ready, whose launcher it writes."""
    dp("prepare", "-pid", instance_dir, "--generator", f"{CORE}:chain3", check=True)
    subprocess.run([str(instance_dir / ".drypipe" / "a" / "task")], check=True, timeout=60)
    res = dp("prepare", "-pid", instance_dir, "--generator", f"{CORE}:chain3", check=True)
    assert "1 completed, 1 ready, 1 waiting" in res.stdout
    assert state_file(instance_dir, "b") == "ready" and (instance_dir / ".drypipe" / "b" / "task").exists()
    assert not (instance_dir / ".drypipe" / "c").exists()
    run(instance_dir, "chain3", check=True)
    assert executions(instance_dir) == ["a step0", "b step0", "c step0"]


def test_drypipe_task_by_runner_runs_the_launcher_without_the_database(instance_dir):
    dp("prepare", "-pid", instance_dir, "--generator", f"{CORE}:chain3", check=True)
    dp("task", "-pid", instance_dir, "--task-key", "a", "--by-runner", check=True)
    assert state_file(instance_dir, "a") == "completed"
    assert Instance(str(instance_dir)).task("a").state == "ready"  # the next run takes it in
    run(instance_dir, "chain3", check=True)
    assert executions(instance_dir) == ["a step0", "b step0", "c step0"]


def test_task_without_wait_runs_detached(instance_dir):
    dp("prepare", "-pid", instance_dir, "--generator", f"{CORE}:ends_unseen", check=True)
    res = dp("task", "-pid", instance_dir, "--task-key", "unseen", check=True, timeout=30)
    assert "launched" in res.stdout  # returned while the task waits for its marker
    (instance_dir / "succeed").touch()
    (instance_dir / "go").touch()
    wait_until(lambda: state_file(instance_dir, "unseen") == "completed", what="the detached task")
    run(instance_dir, "ends_unseen", check=True)
    assert Instance(str(instance_dir)).outputs("unseen") == {"v": 5}


# ---- reserved names under .drypipe ---------------------------------------------------------------

# ---- times are the task's own --------------------------------------------------------------------

def test_durations_are_the_tasks_own(instance_dir):
    run(instance_dir, "timed", check=True)
    inst = Instance(str(instance_dir))
    sleeper = inst.task("sleeper")
    assert 3.0 <= sleeper.duration < 6.0
    trans = inst.transitions("sleeper")["sleeper"]
    step_started = [at for s, _, at in trans if s == "step-started"]
    assert sleeper.started_at == step_started[0]
    two = inst.task("two-py")
    assert 2.0 <= two.duration < 6.0
    (duration,) = sql(instance_dir, "select duration_s from tasks where key='sleeper'")[0]
    assert 3.0 <= duration < 6.0


# ---- a task that ends while no orchestrator runs -------------------------------------------------

@pytest.mark.parametrize("succeed", [False, True])
def test_a_task_ending_while_no_orchestrator_runs_keeps_its_own_end(instance_dir, succeed):
    proc = start_run(instance_dir, "ends_unseen")
    wait_until(lambda: state_file(instance_dir, "unseen") == "step-started.0", what="the task started")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    if succeed:
        (instance_dir / "succeed").touch()
    (instance_dir / "go").touch()
    want = "completed" if succeed else "failed.0"
    wait_until(lambda: state_file(instance_dir, "unseen") == want, what="the task ended unseen")
    ended_before_restart = time.time()
    time.sleep(0.05)
    run(instance_dir, "ends_unseen", check=succeed)
    t = Instance(str(instance_dir)).task("unseen")
    assert t.state_name == want
    assert t.ended_at < ended_before_restart  # the task's own end, not when the next run noticed
    trans = Instance(str(instance_dir)).transitions("unseen")["unseen"]
    assert [s for s, _, _ in trans] == ["launched", "step-started", "completed" if succeed else "failed"]
    assert trans[-1][2] == t.ended_at
    if succeed:
        assert Instance(str(instance_dir)).outputs("unseen") == {"v": 5}
    else:
        assert t.message == "step 0 exited with status 3"
    assert executions(instance_dir) == ["unseen step0"]


# ---- restarting a completed task -----------------------------------------------------------------

def test_restarting_a_completed_task_sends_its_ready_downstream_back_to_waiting(instance_dir):
    run(instance_dir, "up_down", "--until", "down", check=True)
    inst = Instance(str(instance_dir))
    assert inst.task("up").state == "completed" and inst.task("down").state == "ready"
    (instance_dir / "hold-up").touch()
    dp("restart", "-pid", instance_dir, "--task-key", "up", check=True)  # detached: up waits for release-up
    assert Instance(str(instance_dir)).task("down").state == "waiting"
    wait_until(lambda: executions(instance_dir).count("up step0") == 2, what="up rerunning")
    proc = start_run(instance_dir, "up_down")
    wait_until(lambda: Instance(str(instance_dir)).running_orchestrator, what="the run started")
    assert "down step0" not in executions(instance_dir)
    (instance_dir / "release-up").touch()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    inst = Instance(str(instance_dir))
    assert inst.task("down").started_at >= inst.task("up").ended_at
    assert executions(instance_dir) == ["up step0", "up step0", "down step0"]


def test_restart_failed_does_not_start_a_task_whose_upstream_was_restarted_and_failed(instance_dir):
    """Found by the model-based test: b failed; a (completed) was reset and failed; then
    --restart-failed made b ready and ran it although a had not completed again."""
    instance_dir.mkdir()
    (instance_dir / "fail-b").touch()
    run(instance_dir, "marked_chain", check=False)
    assert [t.state_name for t in Instance(str(instance_dir)).tasks()] == ["completed", "failed.0"]
    (instance_dir / "fail-a").touch()
    dp("restart", "-pid", instance_dir, "--task-key", "a", "--reset", "--wait", check=False)
    (instance_dir / "fail-b").unlink()
    run(instance_dir, "marked_chain", "--restart-failed", check=False)  # a fails again: b must wait
    assert {t.key: t.state_name for t in Instance(str(instance_dir)).tasks()} == {"a": "failed.0", "b": "waiting"}
    assert executions(instance_dir) == ["a step0", "b step0", "a step0", "a step0"]
    (instance_dir / "fail-a").unlink()
    run(instance_dir, "marked_chain", "--restart-failed", check=True)
    assert executions(instance_dir)[-2:] == ["a step0", "b step0"]


def test_restart_at_a_later_step_than_the_failed_one_names_the_step(instance_dir):
    """Found by the model-based test: a task killed at step 0 restarted --at-step 1 skipped a
    step that never completed, and failed at every --restart-failed after (its variable unset)."""
    run(instance_dir, "three", check=False, mod=CMDS)  # t: failed.1 (step 1 fails)
    res = dp("restart", "-pid", instance_dir, "--task-key", "t", "--at-step", "2", "--wait")
    assert res.returncode == 2, res
    assert res.stderr == ("drypipe: error: task 't': --at-step 2: its step 1 never completed (failed.1); "
                          "restart it at step 1 or before\n")
    assert Instance(str(instance_dir)).task("t").state_name == "failed.1"
