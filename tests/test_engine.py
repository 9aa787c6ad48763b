"""The engine through the CLI, on real instance dirs and real processes."""
import os
import signal
import sqlite3
import subprocess
import sys

import pytest

from conftest import REPO, drypipe, state_files, wait_until
from drypipe import Instance

GEN = "tests.pipelines.engine"


def run(inst, gen, *extra, env=None, check=None):
    return drypipe("run", "--pipeline-instance-dir", inst, "--generator", f"{GEN}:{gen}", *extra,
                   cwd=REPO, env=env, check=check)


def db_states(inst):
    con = sqlite3.connect(os.path.join(inst, ".drypipe", "drypipe.db"))
    try:
        return {k: (s if st is None else f"{s}.{st}") for k, s, st in con.execute("SELECT key, state, step FROM tasks")}
    finally:
        con.close()


def assert_state_files_match_db(inst):
    db = db_states(inst)
    for key, files in state_files(inst).items():
        assert files == [f"state.{db[key]}"], key


def test_chain_runs_and_results_flow(instance_dir):
    run(instance_dir, "static_chain", check=True)
    assert (instance_dir / "output" / "c-9" / "out.txt").read_text().split() == [str(i) for i in range(10)]
    assert set(db_states(instance_dir).values()) == {"completed"}
    assert_state_files_match_db(instance_dir)


def test_static_generator_is_called_once_and_rerun_changes_nothing(instance_dir):
    run(instance_dir, "static_chain", check=True)
    assert (instance_dir / "generator-calls.txt").read_text().count("x") == 1
    con = sqlite3.connect(instance_dir / ".drypipe" / "drypipe.db")
    n_transitions = con.execute("SELECT count(*) FROM transitions").fetchone()[0]
    mtimes = {p: p.stat().st_mtime_ns for p in (instance_dir / "output").rglob("*")}
    res = run(instance_dir, "static_chain", check=True)
    assert "all 10 tasks completed" in res.stderr
    assert con.execute("SELECT count(*) FROM transitions").fetchone()[0] == n_transitions
    assert {p: p.stat().st_mtime_ns for p in (instance_dir / "output").rglob("*")} == mtimes


def test_dependent_task_starts_as_soon_as_its_upstream_ends(instance_dir):
    """Event driven: no polling sleep between a task's end and its successor's launch."""
    run(instance_dir, "static_chain", env={"CHAIN_LENGTH": "15"}, check=True)
    con = sqlite3.connect(instance_dir / ".drypipe" / "drypipe.db")
    rows = dict(con.execute("SELECT key, launched_at FROM task").fetchall())
    ends = dict(con.execute("SELECT key, ended_at FROM task").fetchall())
    gaps = [rows[f"c-{i}"] - ends[f"c-{i - 1}"] for i in range(1, 15)]
    assert max(gaps) < 1.0, gaps  # the original DryPipe slept up to 5 s here


def test_failure_exit_code_lists_failed_task_with_its_log(instance_dir):
    res = run(instance_dir, "fail_then_downstream", check=False)
    assert res.returncode == 1
    log = instance_dir / ".drypipe" / "bad" / "out.log"
    assert "bad: failed.0" in res.stderr and str(log) in res.stderr
    assert "1 task(s) wait on tasks that did not complete" in res.stderr
    assert db_states(instance_dir) == {"ok": "completed", "bad": "failed.0", "after-bad": "waiting"}
    assert "before" in log.read_text() and not (instance_dir / "output" / "bad" / "f.txt").exists()
    assert "after-bad" not in state_files(instance_dir)  # never launched, never materialized
    assert_state_files_match_db(instance_dir)


@pytest.mark.parametrize("key,message", [
    ("never-set", "output variable x was never set"),
    ("wrong-type", "output variable x=int given 'abc'"),
    ("missing-file", "output file f (output/missing-file/f.txt) was not produced"),
    ("py-list", "returned list; python calls return None or a dict"),
    ("py-undeclared", "returned undeclared variable 'zzz'"),
    ("missing-input", "input file f ("),
])
def test_output_contract_violations_fail_the_task_with_a_message(tmp_path_factory, key, message):
    inst = tmp_path_factory.getbasetemp() / "output-errors"
    if not (inst / ".drypipe").exists():
        run(inst, "output_errors", check=False)
    assert db_states(inst)[key].startswith("failed."), key
    assert message in (inst / ".drypipe" / key / "out.log").read_text()


def test_steps_share_variables_and_failures_name_the_step(instance_dir):
    run(instance_dir, "steps", check=False)
    states = db_states(instance_dir)
    assert states == {"multi": "completed", "fails-at-1": "failed.1"}
    assert Instance(str(instance_dir)).outputs("multi") == {"b": 20, "c": 22, "d": "b=20 c=22"}
    con = sqlite3.connect(instance_dir / ".drypipe" / "drypipe.db")
    steps = [r for r in con.execute("SELECT state, step FROM transitions WHERE key='multi'")]
    assert steps == [("launched", None), ("step-started", 0), ("step-started", 1), ("step-started", 2),
                     ("completed", None)]


def test_task_env_scratch_dir_and_extra_env(instance_dir):
    run(instance_dir, "scratch_and_vars", check=True)
    assert (instance_dir / "output" / "env" / "env.txt").read_text().splitlines() == [
        "scratch exists", "cwd is output dir", "MY_SETTING=it's set"]
    assert not (instance_dir / "output" / "env" / "scratch").exists()  # empty scratch is removed


def test_empty_scratch_dirs_are_kept_for_later_tasks_not_deleted(instance_dir):
    """A completed task's empty scratch dir leaves its output dir for .drypipe/_spare/ and is a
    later task's scratch dir: a run frees no inode (on ext4 without a journal, each freed inode
    slows the file creations of the next minutes). What a task left there stays; one whose mode
    the task changed is removed."""
    run(instance_dir, "scratch_recycled", "-j", "1", check=True)
    out = instance_dir / "output"
    inodes = [(out / f"s-{i}" / "ino").read_text().strip() for i in range(48)]
    assert all(inodes) and len(set(inodes)) < 48  # (every task had a writable scratch dir)
    assert [p.parent.name for p in sorted(out.glob("*/scratch"))] == ["s-3"]
    assert (out / "s-3" / "scratch" / "k").read_text() == "kept\n"
    spare = instance_dir / ".drypipe" / "_spare"
    assert all(p.is_dir() and not any(p.iterdir()) and os.access(p, os.W_OK) for p in spare.iterdir())
    assert len(set(inodes)) == len(list(spare.iterdir())) + 1 + 1  # (s-3's stays, s-5's went)


def test_until_holds_back_matching_tasks(instance_dir):
    res = run(instance_dir, "static_chain", "--until", "c-5", check=True)
    assert "1 task(s) held back by --until" in res.stderr
    states = db_states(instance_dir)
    assert [states[f"c-{i}"] for i in range(7)] == ["completed"] * 5 + ["ready", "waiting"]
    run(instance_dir, "static_chain", check=True)
    assert set(db_states(instance_dir).values()) == {"completed"}


def test_prepare_generates_without_running(instance_dir):
    res = drypipe("prepare", "-pid", instance_dir, "--generator", f"{GEN}:static_chain", cwd=REPO, check=True)
    assert "10 tasks" in res.stdout
    assert db_states(instance_dir) == {"c-0": "ready", **{f"c-{i}": "waiting" for i in range(1, 10)}}
    assert not list((instance_dir / "output").iterdir())


def test_dry_run_shows_what_would_run(instance_dir):
    instance_dir.mkdir()  # the generator writes a file there
    res = drypipe("--dry-run", "run", "-pid", instance_dir, "--generator", f"{GEN}:static_chain", cwd=REPO,
                  check=True)
    assert "would launch now: 1" in res.stdout and "c-0" in res.stdout
    assert not (instance_dir / "output").exists() and not (instance_dir / ".drypipe").exists()


def test_guide_spelling_and_environment_defaults(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    drypipe("run", "-p", f"{GEN}:pipeline_factory", f"--instance-directory={a}", cwd=REPO, check=True)
    assert (a / "output" / "c-9" / "out.txt").exists()
    drypipe("run", cwd=REPO, check=True, env={"DRYPIPE_PIPELINE_INSTANCE_DIR": str(b),
                                               "DRYPIPE_PIPELINE_GENERATOR": f"{GEN}:static_chain"})
    assert (b / "output" / "c-9" / "out.txt").exists()


def test_jobs_bounds_concurrency(instance_dir):
    run(instance_dir, "many", "-j", "1", env={"N_TASKS": "4"}, check=True)
    con = sqlite3.connect(instance_dir / ".drypipe" / "drypipe.db")
    # (a task may be launched before a slot is free: it waits at the reaper, test_admission.py)
    spans = sorted(con.execute("SELECT started_at, ended_at FROM task").fetchall())
    assert all(spans[i][1] <= spans[i + 1][0] for i in range(len(spans) - 1)), spans


def test_default_concurrency_is_the_cpu_count(instance_dir):
    n = os.cpu_count()
    run(instance_dir, "many", env={"N_TASKS": str(3 * n)}, check=True)
    con = sqlite3.connect(instance_dir / ".drypipe" / "drypipe.db")
    spans = con.execute("SELECT started_at, ended_at FROM task").fetchall()
    peak = max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)
    assert peak == n


def test_dynamic_fan_out_and_fan_in(instance_dir):
    run(instance_dir, "fan_out_in", env={"FAN": "6"}, check=True)
    assert (instance_dir / "output" / "sum.txt").exists() is False
    lines = (instance_dir / "output" / "sum" / "sum.txt").read_text().split()
    assert lines == ["42", "42"]  # 2 * (1 + ... + 6), from the files and from the variables
    # the generator ran at start, when prep completed, and when the last work task completed
    assert (instance_dir / "generator-calls.txt").read_text().count("x") == 3


def test_unsatisfiable_wait_is_reported(instance_dir):
    res = run(instance_dir, "waits_forever", check=False)
    assert res.returncode == 1
    assert "dsl.wait_for_matching_tasks waits for 'no-such-*', which match no task" in res.stderr


def test_generator_error_is_one_line_naming_the_line(instance_dir):
    res = run(instance_dir, "raises", check=False)
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
    assert "ValueError: bad dataset row 7" in res.stderr and "engine.py:" in res.stderr


@pytest.mark.parametrize("mode,message", [("raise", "ValueError: bad dataset row 2501"),
                                          ("missing", "task 'orphan' consumes an output of task 'ghost'")])
def test_a_generator_failing_after_thousands_of_new_tasks_records_none_of_them(instance_dir, mode, message):
    """The store hands a big generation's rows to its writer process while the generator still
    runs: a failure rolls them back (what ran goes on, and is all the database holds), and the
    TaskConf they introduced is recorded again when a fixed generator yields them."""
    res = run(instance_dir, "fails_after_thousands", env={"MODE": mode}, check=False)
    assert message in res.stderr
    db = os.path.join(instance_dir, ".drypipe", "drypipe.db")
    assert db_states(instance_dir) == {"seed": "completed"}
    res = drypipe("prepare", "--pipeline-instance-dir", instance_dir, "--generator", f"{GEN}:fails_after_thousands",
                  cwd=REPO, env={"FIXED": "1"}, check=True)
    assert "2501 tasks" in res.stdout
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA foreign_key_check").fetchall() == []
        confs = con.execute("SELECT DISTINCT c.json FROM task t JOIN task_conf c ON c.id = t.conf_id "
                            "WHERE t.key LIKE 'big-%'").fetchall()
    finally:
        con.close()
    assert len(confs) == 1 and '"BIG"' in confs[0][0]


def _start_run(inst, gen):
    return subprocess.Popen([sys.executable, "-m", "drypipe", "run", "-q", "--pipeline-instance-dir", str(inst),
                             "--generator", f"{GEN}:{gen}"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _launcher_pid(inst, key):
    log = inst / ".drypipe" / key / "drypipe.log"
    text = log.read_text() if log.exists() else ""
    return int(text.split(" pid=")[1].split()[0]) if " pid=" in text else None


def test_task_killed_behind_the_orchestrators_back_is_marked_killed(instance_dir):
    proc = _start_run(instance_dir, "sleeper")
    try:
        wait_until(lambda: (instance_dir / ".drypipe" / "sleeper" / "state.step-started.0").exists(),
                   what="sleeper to start")
        pid = wait_until(lambda: _launcher_pid(instance_dir, "sleeper"), what="launcher pid")
        os.killpg(pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 1
    assert db_states(instance_dir) == {"sleeper": "killed.0", "quick": "completed"}
    assert "sleeper: killed.0" in err
    assert_state_files_match_db(instance_dir)


def test_task_kill_command_kills_a_running_task(instance_dir):
    proc = _start_run(instance_dir, "sleeper")
    try:
        wait_until(lambda: (instance_dir / ".drypipe" / "sleeper" / "state.step-started.0").exists(),
                   what="sleeper to start")
        subprocess.run([str(instance_dir / ".drypipe" / "sleeper" / "task"), "kill"], check=True, timeout=10)
        proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert db_states(instance_dir)["sleeper"] == "killed.0"
    assert_state_files_match_db(instance_dir)


def test_task_launcher_can_be_run_by_hand(instance_dir):
    run(instance_dir, "scratch_and_vars", check=True)
    task = instance_dir / ".drypipe" / "env" / "task"
    (instance_dir / "output" / "env" / "env.txt").unlink()
    res = subprocess.run([str(task)], capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    assert (instance_dir / "output" / "env" / "env.txt").exists()
    env = subprocess.run([str(task), "env"], capture_output=True, text=True, timeout=30).stdout
    assert f"__task_output_dir={instance_dir}/output/env" in env and "MY_SETTING=it's set" in env


def test_no_python_interpreter_between_orchestrator_and_a_bash_step(instance_dir):
    """The launcher of a bash task is bash: nothing but bash from the orchestrator to the step."""
    proc = subprocess.Popen([sys.executable, "-m", "drypipe", "run", "-q", "-pid", str(instance_dir),
                             "--generator", f"{GEN}:ancestry"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, ORCH_PID="0"))
    # ORCH_PID is only known once started: the walk stops at pid 1 or at the orchestrator anyway
    proc.communicate(timeout=60)
    assert proc.returncode == 0
    chain = (instance_dir / "output" / "who" / "chain.txt").read_text().split()
    python_at = next(i for i, name in enumerate(chain) if name.startswith("python"))
    assert chain[:python_at] and set(chain[:python_at]) == {"bash"}, chain


def test_verbose_shows_events_and_error_tracebacks(instance_dir):
    res = run(instance_dir, "static_chain", "--until", "c-2", env={"CHAIN_LENGTH": "3"})
    assert "task c-0: completed" not in res.stderr
    res = drypipe("-v", "run", "-pid", instance_dir, "--generator", f"{GEN}:static_chain", cwd=REPO,
                  env={"CHAIN_LENGTH": "3"}, check=True)
    assert "task c-2: completed" in res.stderr
    res = drypipe("-v", "run", "-pid", instance_dir, "--generator", f"{GEN}:raises", cwd=REPO)
    assert res.returncode == 2 and "Traceback" in res.stderr and "ValueError: bad dataset row 7" in res.stderr


def test_task_ps_and_tail_show_a_running_task(instance_dir):
    proc = _start_run(instance_dir, "sleeper")
    task = str(instance_dir / ".drypipe" / "sleeper" / "task")
    try:
        wait_until(lambda: (instance_dir / ".drypipe" / "sleeper" / "state.step-started.0").exists(),
                   what="sleeper to start")
        ps = subprocess.run([task, "ps"], capture_output=True, text=True, timeout=30)
        assert ps.returncode == 0 and "sleep 60" in ps.stdout, ps
        # tail -F never ends by itself: `timeout` bounds it, its output is what it showed
        tail = subprocess.run(["timeout", "2", task, "tail"], capture_output=True, text=True, timeout=30)
        assert "step-started.0" in tail.stdout and "drypipe.log" in tail.stdout, tail
        subprocess.run([task, "kill"], check=True, timeout=10)
        proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert db_states(instance_dir)["sleeper"] == "killed.0"
