"""The commands besides a plain `drypipe run`, through the real CLI on real instance dirs:
restarts (run --restart-failed / --reset-failed, restart, task), inspection (list-states,
report-execution-times, status, poll-task, dump-env, call), upgrade-drypipe, verbosity, the
instance lock, and the help of every command."""
import ast
import os
import re
import sqlite3
import subprocess
import sys

import click
import pytest

from conftest import REPO, drypipe, wait_until
from drypipe import Instance
from drypipe.state import db

GEN = "tests.pipelines.commands"


def dp(*args, **kw):
    return drypipe(*args, cwd=REPO, **kw)


def run(inst, gen, *extra, check=None, env=None):
    return dp("run", "-q", "--pipeline-instance-dir", inst, "--generator", f"{GEN}:{gen}", *extra,
              check=check, env=env)


def prepare(inst, gen):
    return dp("prepare", "-pid", inst, "--generator", f"{GEN}:{gen}", check=True)


def executions(inst):
    """The `<key> step<N>` lines the steps appended, in order."""
    p = inst / "executions.txt"
    return p.read_text().splitlines() if p.exists() else []


def reset_executions(inst):
    (inst / "executions.txt").write_text("")


def pass_step_1(inst):
    """From now on, step 1 of the `_three` tasks succeeds."""
    inst.mkdir(parents=True, exist_ok=True)
    (inst / "pass-step-1").touch()


def state(inst, key):
    return Instance(str(inst)).task(key).state_name


def one_line_error(res, message):
    assert res.returncode == 2, res
    assert res.stderr == f"drypipe: error: {message}\n", res
    assert res.stdout == "", res


def table_rows(text):
    """Rows of a table printed by list-states / report-execution-times (cells split on 2+ spaces)."""
    lines = text.splitlines()
    assert re.fullmatch(r"[- ]+", lines[1]), text
    rows = []
    for line in lines[2:]:
        if not line.strip():
            break
        rows.append(re.split(r" {2,}", line.strip()))
    return rows


def seconds(txt):
    m = re.fullmatch(r"(\d+\.\d+)s", txt)
    assert m, txt
    return float(m.group(1))


def start_run(inst, gen):
    return subprocess.Popen([sys.executable, "-m", "drypipe", "run", "-q", "--pipeline-instance-dir", str(inst),
                             "--generator", f"{GEN}:{gen}"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(proc, inst):
    """Let the blocked task of a background run end, and the run with it."""
    inst.mkdir(parents=True, exist_ok=True)
    (inst / "release").touch()
    try:
        return proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def step_started(inst, key, step=0):
    return lambda: (inst / ".drypipe" / key / f"state.step-started.{step}").exists()


# ---- drypipe run --restart-failed / --reset-failed --------------------------------------------

def test_restart_failed_resumes_at_the_failed_step_with_earlier_variables(instance_dir):
    res = run(instance_dir, "fails_with_downstream", check=False)
    assert res.returncode == 1
    assert state(instance_dir, "up") == "failed.1"
    assert executions(instance_dir) == ["up step0", "up step1"]
    pass_step_1(instance_dir)

    res = run(instance_dir, "fails_with_downstream", "--restart-failed", check=True)
    assert "all 3 tasks completed" in res.stderr
    # step 0 did not run again, yet its variable a reached steps 1 (b=a+1) and 2 (python)
    assert executions(instance_dir) == ["up step0", "up step1", "up step1", "up step2"]
    inst = Instance(str(instance_dir))
    assert inst.outputs("up") == {"a": 7, "b": 8, "c": "a=7 b=8",
                                  "result": str(instance_dir / "output" / "up" / "result.txt")}
    assert (instance_dir / "output" / "up" / "result.txt").read_text() == "a=7 b=8\n"
    assert inst.outputs("down") == {"d": "got a=7 b=8"}
    assert inst.counts() == {"completed": 3}


def test_reset_failed_reruns_from_step_0_with_a_clean_output_dir(instance_dir):
    run(instance_dir, "fails_with_downstream", check=False)
    stale = instance_dir / "output" / "up" / "stale.txt"
    assert stale.exists()  # written by the failed attempt
    pass_step_1(instance_dir)

    run(instance_dir, "fails_with_downstream", "--reset-failed", check=True)
    assert executions(instance_dir) == ["up step0", "up step1", "up step0", "up step1", "up step2"]
    assert not stale.exists()
    assert sorted(p.name for p in (instance_dir / "output" / "up").iterdir()) == ["result.txt"]
    assert Instance(str(instance_dir)).outputs("down") == {"d": "got a=7 b=8"}


def test_run_accepts_a_sleep_schedule(instance_dir):
    pass_step_1(instance_dir)
    res = run(instance_dir, "three", "--sleep-schedule", "0,1,3", check=True)
    assert "all 1 tasks completed" in res.stderr
    assert state(instance_dir, "t") == "completed"


# ---- drypipe restart ----------------------------------------------------------------------------

@pytest.fixture
def completed_three(instance_dir):
    pass_step_1(instance_dir)
    run(instance_dir, "three", check=True)
    reset_executions(instance_dir)
    return instance_dir


def test_restart_wait_reruns_a_completed_task_from_step_0(completed_three):
    inst = completed_three
    res = dp("restart", "-pid", inst, "--task-key", "t", "--wait", check=True)
    assert res.stderr == "task t: completed\n"
    assert executions(inst) == ["t step0", "t step1", "t step2"]
    assert state(inst, "t") == "completed"


def test_restart_at_step_keeps_the_variables_of_earlier_steps(completed_three):
    inst = completed_three
    (inst / "output" / "t" / "result.txt").unlink()
    dp("restart", "-pid", inst, "--task-key", "t", "--at-step", "2", "--wait", check=True)
    assert executions(inst) == ["t step2"]
    assert (inst / "output" / "t" / "result.txt").read_text() == "a=7 b=8\n"
    assert Instance(str(inst)).outputs("t")["c"] == "a=7 b=8"


def test_restart_reset_clears_the_output_dir_and_reruns_from_step_0(completed_three):
    inst = completed_three
    junk = inst / "output" / "t" / "junk.txt"
    junk.write_text("left over")
    dp("restart", "-pid", inst, "--task-key", "t", "--reset", "--wait", check=True)
    assert executions(inst) == ["t step0", "t step1", "t step2"]
    assert not junk.exists()
    assert (inst / "output" / "t" / "result.txt").read_text() == "a=7 b=8\n"


def test_restart_wait_resumes_a_failed_task_at_its_failed_step(instance_dir):
    run(instance_dir, "three", check=False)
    res = dp("restart", "-pid", instance_dir, "--task-key", "t", "--wait")
    assert res.returncode == 1, res
    log = instance_dir / ".drypipe" / "t" / "out.log"
    assert res.stderr == f"task t: failed.1 - step 1 exited with status 3\nlog: {log}\n"
    assert executions(instance_dir) == ["t step0", "t step1", "t step1"]

    pass_step_1(instance_dir)
    dp("restart", "-pid", instance_dir, "--task-key", "t", "--wait", check=True)
    assert executions(instance_dir) == ["t step0", "t step1", "t step1", "t step1", "t step2"]
    assert Instance(str(instance_dir)).outputs("t")["b"] == 8


def test_restart_errors_are_one_line_and_change_nothing(instance_dir):
    run(instance_dir, "fails_with_downstream", check=False)
    before = (Instance(str(instance_dir)).transitions(), executions(instance_dir))
    one_line_error(dp("restart", "-pid", instance_dir, "--task-key", "nope", "--wait"),
                   f"no task 'nope' in {instance_dir}")
    one_line_error(dp("restart", "-pid", instance_dir, "--task-key", "down", "--wait"),
                   "task 'down' waits on 'up'")
    one_line_error(dp("restart", "-pid", instance_dir, "--task-key", "up", "--at-step", "3", "--wait"),
                   "task 'up': --at-step 3 is not a step (0..2)")
    res = dp("restart", "-pid", instance_dir, "--task-key", "up", "--at-step", "-1")
    assert res.returncode == 2 and "--at-step" in res.stderr
    assert (Instance(str(instance_dir)).transitions(), executions(instance_dir)) == before
    assert state(instance_dir, "up") == "failed.1" and state(instance_dir, "down") == "waiting"


def _detached_restart(inst, key):
    res = dp("restart", "-pid", inst, "--task-key", key, check=True)
    m = re.fullmatch(rf"task {key}: launched \(job (\d+)\)\n", res.stdout)
    assert m, res
    return int(m.group(1))


def test_restart_without_wait_runs_detached_and_the_next_run_ingests_it(instance_dir):
    instance_dir.mkdir()
    (instance_dir / "release").touch()
    run(instance_dir, "blocking", check=True)
    (instance_dir / "release").unlink()

    pid = _detached_restart(instance_dir, "blocker")  # returns while the task is blocked
    try:
        wait_until(step_started(instance_dir, "blocker"), what="the detached task to start")
        os.kill(pid, 0)  # alive, though `drypipe restart` exited
        inst = Instance(str(instance_dir))
        assert inst.running_orchestrator is None
        assert inst.task("blocker").state == "launched"
    finally:
        (instance_dir / "release").touch()
    wait_until(lambda: (instance_dir / ".drypipe" / "blocker" / "state.completed").exists(),
               what="the detached task to complete")
    assert state(instance_dir, "blocker") == "launched"  # nothing ingested it yet

    res = run(instance_dir, "blocking", check=True)
    assert "all 2 tasks completed" in res.stderr
    inst = Instance(str(instance_dir))
    assert inst.task("blocker").state == "completed"
    assert inst.outputs("blocker") == {"n_runs": 2}  # the value of the detached run
    assert executions(instance_dir) == ["blocker step0", "blocker step0"]


def test_ingesting_a_detached_restart_records_only_its_own_history(completed_three):
    inst = completed_three
    first = Instance(str(inst)).transitions()["t"]
    assert [s for s, _, _ in first] == ["launched", "step-started", "step-started", "step-started", "completed"]
    _detached_restart(inst, "t")
    wait_until(lambda: (inst / ".drypipe" / "t" / "state.completed").exists(), what="t to complete")
    run(inst, "three", check=True)
    i = Instance(str(inst))
    trans = i.transitions()["t"]
    assert [(s, n) for s, n, _ in trans[len(first):]] == [
        ("ready", None), ("launched", None), ("step-started", 0), ("step-started", 1), ("step-started", 2),
        ("completed", None)]
    t = i.task("t")
    # the duration report-execution-times shows is this attempt's, not the time since the first one
    assert t.launched_at <= t.started_at <= t.ended_at


# ---- drypipe task -------------------------------------------------------------------------------

def test_task_runs_one_task_in_the_foreground(instance_dir):
    prepare(instance_dir, "chatty")
    res = dp("task", "-pid", instance_dir, "--task-key", "chatty", "--wait", check=True)
    assert res.stderr == "task chatty: completed\n"
    # already over when the command returns
    assert (instance_dir / ".drypipe" / "chatty" / "state.completed").exists()
    assert Instance(str(instance_dir)).outputs("chatty") == {"n": 3}
    assert "chatty line 3" in (instance_dir / ".drypipe" / "chatty" / "out.log").read_text()


def test_task_tail_shows_its_out_log_on_stdout(instance_dir):
    prepare(instance_dir, "chatty")
    res = dp("task", "-pid", instance_dir, "--task-key", "chatty", "--tail", check=True)
    assert res.stdout.splitlines() == ["chatty line 1", "chatty line 2", "chatty line 3", "chatty step 1 done"]
    res = dp("task", "-pid", instance_dir, "--task-key", "chatty", "--wait", check=True)
    assert res.stdout == ""  # without --tail, nothing


def test_task_resumes_a_failed_task_at_its_failed_step(instance_dir):
    run(instance_dir, "three", check=False)
    pass_step_1(instance_dir)
    dp("task", "-pid", instance_dir, "--task-key", "t", "--wait", check=True)
    assert executions(instance_dir) == ["t step0", "t step1", "t step1", "t step2"]


@pytest.mark.parametrize("command", [["restart", "--wait"], ["task", "--wait"]])
def test_restart_and_task_run_only_the_named_task(instance_dir, command):
    run(instance_dir, "fails_with_downstream", check=False)
    pass_step_1(instance_dir)
    dp(*command, "-pid", instance_dir, "--task-key", "up", check=True)
    assert state(instance_dir, "up") == "completed"
    assert state(instance_dir, "down") == "ready"  # left for the next `drypipe run`
    assert not (instance_dir / ".drypipe" / "down").exists()
    run(instance_dir, "fails_with_downstream", check=True)
    assert state(instance_dir, "down") == "completed"


# ---- list-states, poll-task, status -----------------------------------------------------------

@pytest.fixture(scope="module")
def failed_instance(tmp_path_factory):
    """several_fail, run once: good-0 and good-1 completed, fail-0 and fail-1 failed.1."""
    inst = tmp_path_factory.mktemp("failed") / "instance"
    assert run(inst, "several_fail").returncode == 1
    return inst


def test_list_states_table_and_counts(failed_instance):
    res = dp("list-states", "-pid", failed_instance, check=True)
    lines = res.stdout.splitlines()
    assert re.split(r" {2,}", lines[0]) == ["task", "state", "attempt", "duration", "message"]
    rows = table_rows(res.stdout)
    assert [r[:3] for r in rows] == [["good-0", "completed", "1"], ["good-1", "completed", "1"],
                                     ["fail-0", "failed.1", "1"], ["fail-1", "failed.1", "1"]]
    assert all(re.fullmatch(r"\d+\.\d\ds", r[3]) for r in rows)
    assert rows[2][4] == rows[3][4] == "step 1 exited with status 3"
    assert lines[-1] == "4 tasks: 2 completed, 2 failed"


def test_list_states_filters_by_key_glob_and_state(failed_instance):
    res = dp("list-states", "-pid", failed_instance, "--task-key", "fail-*", check=True)
    assert [r[0] for r in table_rows(res.stdout)] == ["fail-0", "fail-1"]
    assert res.stdout.splitlines()[-1] == "2 tasks: 2 failed"
    res = dp("list-states", "-pid", failed_instance, "--state", "failed", check=True)
    assert [r[:2] for r in table_rows(res.stdout)] == [["fail-0", "failed.1"], ["fail-1", "failed.1"]]
    res = dp("list-states", "-pid", failed_instance, "--state", "completed", "-k", "*-1", check=True)
    assert [r[0] for r in table_rows(res.stdout)] == ["good-1"]
    assert res.stdout.splitlines()[-1] == "1 tasks: 1 completed"


def test_poll_task_prints_the_state(failed_instance, instance_dir):
    assert dp("poll-task", "-pid", failed_instance, "--task-key", "fail-0", check=True).stdout == "failed.1\n"
    assert dp("poll-task", "-pid", failed_instance, "-k", "good-1", check=True).stdout == "completed\n"
    prepare(instance_dir, "chatty")
    assert dp("poll-task", "-pid", instance_dir, "-k", "after-chatty", check=True).stdout == "waiting\n"
    assert dp("poll-task", "-pid", instance_dir, "-k", "chatty", check=True).stdout == "ready\n"
    one_line_error(dp("poll-task", "-pid", instance_dir, "-k", "nope"), f"no task 'nope' in {instance_dir}")


def test_poll_task_takes_a_key_not_a_glob(failed_instance):
    res = dp("poll-task", "-pid", failed_instance, "-k", "fail-?")  # not the state of fail-0
    assert res.returncode == 2 and res.stdout == "", res
    assert res.stderr.startswith("drypipe: error: ") and res.stderr.count("\n") == 1 and "'fail-?'" in res.stderr


def test_status_during_and_after_a_run(instance_dir):
    res = dp("status", "-pid", instance_dir)
    assert res.returncode == 2 and "not a pipeline instance" in res.stderr
    proc = start_run(instance_dir, "blocking_with_failure")
    try:
        wait_until(step_started(instance_dir, "blocker"), what="blocker to start")
        wait_until(lambda: {k: v for k, v in Instance(str(instance_dir)).counts().items()
                            if k in ("completed", "failed")} == {"completed": 1, "failed": 1},
                   what="quick and broken to end")
        res = dp("status", "-pid", instance_dir, check=True)
        lines = res.stdout.splitlines()
        assert lines[0] == f"{instance_dir}: orchestrator running (pid {proc.pid})"
        assert re.fullmatch(r"3 tasks: 1 (launched|step-started), 1 completed, 1 failed", lines[1]), lines
        assert lines[2] == "running (1):"
        assert re.fullmatch(r" +blocker +(launched|step-started\.0) +\d+\.\d\ds", lines[3]), lines
        assert lines[4] == "failed (1):"
        assert lines[5].split() == ["broken", "failed.0", "step", "0", "exited", "with", "status", "5",
                                    str(instance_dir / ".drypipe" / "broken" / "out.log")]
        assert dp("poll-task", "-pid", instance_dir, "-k", "blocker", check=True).stdout == "step-started.0\n"
        watch = subprocess.Popen([sys.executable, "-m", "drypipe", "status", "--watch", "--interval", "0.1",
                                  "-pid", str(instance_dir)], cwd=REPO, stdout=subprocess.PIPE, text=True,
                                 env={**os.environ, "PYTHONUNBUFFERED": "1"})
        first = watch.stdout.readline()  # the first frame, while the run goes on
        assert first == f"{instance_dir}: orchestrator running (pid {proc.pid})\n"
    finally:
        finish(proc, instance_dir)
    assert proc.returncode == 1
    out, _ = watch.communicate(timeout=30)  # --watch ends by itself with the run
    assert watch.returncode == 0
    res = dp("status", "-pid", instance_dir, check=True)
    lines = res.stdout.splitlines()
    assert lines[:2] == [f"{instance_dir}: no orchestrator running", "3 tasks: 2 completed, 1 failed"]
    assert "running (" not in res.stdout and lines[2] == "failed (1):"


def test_a_second_run_on_the_same_instance_is_refused(instance_dir):
    proc = start_run(instance_dir, "blocking")
    try:
        wait_until(step_started(instance_dir, "blocker"), what="blocker to start")
        one_line_error(run(instance_dir, "blocking"), f"{instance_dir}: another drypipe orchestrator is "
                                                      f"running on this instance (pid {proc.pid})")
        res = dp("restart", "-pid", instance_dir, "-k", "quick", "--wait")
        assert res.returncode == 2 and "another drypipe orchestrator is running" in res.stderr
    finally:
        _, err = finish(proc, instance_dir)
    assert proc.returncode == 0, err
    assert executions(instance_dir) == ["blocker step0"]  # the refused commands launched nothing
    assert Instance(str(instance_dir)).outputs("blocker") == {"n_runs": 1}


# ---- report-execution-times ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def timed_instance(tmp_path_factory):
    inst = tmp_path_factory.mktemp("timed") / "instance"
    run(inst, "timed", check=True)
    return inst


def test_report_execution_times_per_task_per_step_grouped_with_totals(timed_instance):
    res = dp("report-execution-times", "-pid", timed_instance, check=True)
    rows = table_rows(res.stdout)
    keys = ["align-0", "align-1", "align-2", "align: 3 tasks", "sort-0", "sort-1", "sort: 2 tasks",
            "merge", "merge: 1 tasks"]
    assert [r[0] for r in rows] == keys
    by_key = {r[0]: r for r in rows}
    for i in range(3):
        _, st, dur, steps, *_ = by_key[f"align-{i}"]  # then cpu, peak mem
        assert st == "completed" and seconds(dur) >= 0.3
        s0, s1 = steps.split()
        assert s0.startswith("0:") and s1.startswith("1:")
        assert seconds(s0[2:]) >= 0.1 and seconds(s1[2:]) >= 0.2
    for i in range(2):
        assert by_key[f"sort-{i}"][3].startswith("0:")
    # group rows: the sum of their tasks' durations, with mean and max
    align_sum = sum(seconds(by_key[f"align-{i}"][2]) for i in range(3))
    assert abs(seconds(by_key["align: 3 tasks"][1]) - align_sum) <= 0.02
    assert re.fullmatch(r"mean \d+\.\d\ds, max \d+\.\d\ds", by_key["align: 3 tasks"][2])
    total = re.fullmatch(r"total: 6 tasks, (\d+\.\d\d)s of task time", res.stdout.splitlines()[-1])
    # (each row is rounded to 0.01 s: three align rows may add up to 0.015 s more than their sum)
    assert total and float(total.group(1)) >= align_sum + 0.2 - 0.02


def test_report_execution_times_filter_and_task_key(timed_instance):
    res = dp("report-execution-times", "-pid", timed_instance, "--filter", "align-*", check=True)
    assert [r[0] for r in table_rows(res.stdout)] == ["align-0", "align-1", "align-2", "align: 3 tasks"]
    assert res.stdout.splitlines()[-1].startswith("total: 3 tasks, ")
    res = dp("report-execution-times", "-pid", timed_instance, "--task-key", "sort-1", check=True)
    assert [r[0] for r in table_rows(res.stdout)] == ["sort-1", "sort: 1 tasks"]
    assert res.stdout.splitlines()[-1].startswith("total: 1 tasks, ")


# ---- dump-env, call -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def typed_instance(tmp_path_factory):
    inst = tmp_path_factory.mktemp("typed") / "instance"
    run(inst, "typed", check=True)
    return inst


def test_dump_env_shows_inputs_and_drypipe_variables(typed_instance):
    res = dp("dump-env", "-pid", typed_instance, "--task-key", "use", check=True)
    # what it prints is the task's environment, usable as is by bash
    shown = subprocess.run(["bash", "-c", 'eval "$(cat)"; printf "%s\\n" "$n" "$ratio" "$k" "$label" "$f" '
                            '"$__task_key" "$__task_output_dir" "$__pipeline_instance_dir"'],
                           input=res.stdout, capture_output=True, text=True, env={"PATH": os.environ["PATH"]},
                           check=True).stdout.splitlines()
    out = typed_instance / "output"
    assert shown == ["42", "2.5", "3", "it's a label", str(out / "src" / "data.txt"), "use", str(out / "use"),
                     str(typed_instance)]


def test_dump_env_of_a_task_not_yet_launched_says_so(instance_dir):
    prepare(instance_dir, "typed")
    res = dp("dump-env", "-pid", instance_dir, "--task-key", "use")
    assert res.returncode != 0 and res.stdout == ""
    assert res.stderr.count("\n") == 1 and "task 'use' has not been launched yet" in res.stderr, res
    one_line_error(dp("dump-env", "-pid", instance_dir, "-k", "nope"), f"no task 'nope' in {instance_dir}")


def test_call_binds_the_tasks_typed_inputs(typed_instance):
    res = dp("call", "-pid", typed_instance, "--task-key", "use", f"{GEN}:describe_inputs", check=True)
    assert ast.literal_eval(res.stdout) == {
        "n": ("int", 42), "ratio": ("float", 2.5), "label": ("str", "it's a label"), "k": ("int", 3),
        "f_content": ["line1", "line2"], "key": "use"}


def test_call_errors(typed_instance, instance_dir):
    res = dp("call", "-pid", typed_instance, "-k", "use", "no_colon")
    assert res.returncode == 2 and "expected MODULE:FUNCTION" in res.stderr
    one_line_error(dp("call", "-pid", typed_instance, "-k", "nope", f"{GEN}:describe_inputs"),
                   f"no task 'nope' in {typed_instance}")
    prepare(instance_dir, "typed")
    res = dp("call", "-pid", instance_dir, "-k", "use", f"{GEN}:describe_inputs")
    assert res.returncode != 0 and "task 'use' has not been launched yet" in res.stderr


@pytest.mark.parametrize("function,message", [
    ("tests.no_such_module:f", "module 'tests.no_such_module' not found"),
    (f"{GEN}:no_such_function", f"module '{GEN}' has no function 'no_such_function'"),
    (f"{GEN}:describe_inputs", "parameter 'label' of describe_inputs is not an input, output or DryPipe "
                               "variable of the task"),
])
def test_call_errors_are_one_line(typed_instance, function, message):
    res = dp("call", "-pid", typed_instance, "-k", "src", function)
    assert res.returncode == 2, res
    assert "Traceback" not in res.stderr and res.stderr.count("\n") == 1, res
    assert res.stderr.startswith("drypipe: error: ") and message in res.stderr, res


@pytest.mark.parametrize("command", [["dump-env"], ["call", f"{GEN}:describe_inputs"]])
def test_command_errors_exit_2_as_documented(instance_dir, command):
    prepare(instance_dir, "typed")
    res = dp(*command, "-pid", instance_dir, "-k", "use")
    assert res.returncode == 2
    assert res.stderr.startswith("drypipe: error: task 'use' has not been launched yet")


# ---- upgrade-drypipe ----------------------------------------------------------------------------

def test_upgrade_drypipe(instance_dir):
    prepare(instance_dir, "chatty")
    res = dp("upgrade-drypipe", "-pid", instance_dir, check=True)
    assert res.stdout == f"{instance_dir}: database already at revision {db.SCHEMA_REVISION}\n"

    path = instance_dir / ".drypipe" / "drypipe.db"
    con = sqlite3.connect(path)
    con.execute("UPDATE alembic_version SET version_num='9999'")
    con.commit()
    con.close()
    res = dp("upgrade-drypipe", "-pid", instance_dir)
    one_line_error(res, f"{path}: database revision '9999' was written by a newer DryPipe "
                        f"(this one knows up to '{db.SCHEMA_REVISION}'); upgrade drypipe")
    assert db.current_revision(str(path)) == "9999"  # left alone
    res = dp("list-states", "-pid", instance_dir)
    assert res.returncode == 2 and "written by a newer DryPipe" in res.stderr


def test_upgrade_drypipe_of_a_missing_instance(tmp_path):
    res = dp("upgrade-drypipe", "-pid", tmp_path / "nope")
    assert res.returncode == 2 and "not a pipeline instance" in res.stderr
    assert not (tmp_path / "nope").exists()


# ---- verbosity ----------------------------------------------------------------------------------

@pytest.mark.parametrize("flag", [None, "-v", "-vv"])
def test_an_error_has_a_traceback_only_with_v(instance_dir, flag):
    res = dp(*([flag] if flag else []), "run", "-q", "-pid", instance_dir, "--generator", f"{GEN}:raises_dp_error")
    assert res.returncode == 2 and res.stdout == ""
    last = res.stderr.splitlines()[-1]
    assert re.fullmatch(r"drypipe: error: invalid task key 'a/b': .*\(at .*commands\.py:\d+\)", last), res
    if flag is None:
        assert res.stderr == last + "\n"
    else:
        assert "Traceback (most recent call last)" in res.stderr and "InvalidPipeline" in res.stderr


def _log_levels(stderr):
    return {m.group(1) for m in re.finditer(r"^\d{4}-\d\d-\d\d [\d:,]+ ([A-Z]+) drypipe", stderr, re.M)}


def test_v_and_vv_raise_the_logging_level(tmp_path):
    levels = {}
    for flag in (None, "-v", "-vv"):
        inst = tmp_path / str(flag)
        pass_step_1(inst)
        res = dp(*([flag] if flag else []), "run", "-q", "-pid", inst, "--generator", f"{GEN}:three", check=True)
        levels[flag] = _log_levels(res.stderr)
    assert levels[None] == set()
    assert "INFO" in levels["-v"] and "DEBUG" not in levels["-v"]
    assert {"INFO", "DEBUG"} <= levels["-vv"]


# ---- help ---------------------------------------------------------------------------------------

def test_every_command_has_help_and_is_listed_by_drypipe_help():
    from drypipe.cli.main import cli
    assert {"run", "prepare", "list-states", "status", "report-execution-times", "restart", "task", "poll-task",
            "dump-env", "call", "upgrade-drypipe"} <= set(cli.commands)
    res = dp("--help", check=True)
    for name, cmd in cli.commands.items():
        assert (cmd.help or "").strip(), name
        assert cmd.get_short_help_str().strip(), name
        if not cmd.hidden:
            assert re.search(rf"^  {re.escape(name)}( |$)", res.stdout, re.M), name
    res = dp("restart", "--help", check=True)
    assert "--at-step" in res.stdout and "--reset" in res.stdout and "--wait" in res.stdout


def test_every_command_is_in_the_readme():
    from drypipe.cli.main import cli
    readme = (REPO / "README.md").read_text()
    missing = [name for name, cmd in sorted(cli.commands.items())
               if not cmd.hidden and not re.search(rf"`(--dry-run )?{re.escape(name)}[` ]", readme)]
    assert missing == []


def test_every_option_has_help():
    from drypipe.cli.main import cli
    missing = [f"{name} {p.opts[0]}" for name, cmd in sorted(cli.commands.items()) for p in cmd.params
               if isinstance(p, click.Option) and not p.hidden and not (p.help or "").strip()]
    assert missing == []
