"""The Python API (`from drypipe import Instance`) on real instance dirs made by the real CLI."""
import os
import subprocess
import sys

import pytest

from conftest import REPO, drypipe, wait_until
from drypipe import Instance
from drypipe.errors import DryPipeError

GEN = "tests.pipelines.commands"


def run(inst, gen, check=None):
    return drypipe("run", "-q", "--pipeline-instance-dir", inst, "--generator", f"{GEN}:{gen}", cwd=REPO,
                   check=check)


def executions(inst):
    p = inst / "executions.txt"
    return p.read_text().splitlines() if p.exists() else []


@pytest.fixture(scope="module")
def failed(tmp_path_factory):
    """several_fail run once: good-0, good-1 completed; fail-0, fail-1 failed at step 1."""
    inst = tmp_path_factory.mktemp("api-failed") / "instance"
    assert run(inst, "several_fail").returncode == 1
    return inst


@pytest.fixture(scope="module")
def typed(tmp_path_factory):
    inst = tmp_path_factory.mktemp("api-typed") / "instance"
    run(inst, "typed", check=True)
    return inst


def test_tasks_in_creation_order_filtered_by_state_and_key_glob(failed):
    inst = Instance(str(failed))
    assert [t.key for t in inst.tasks()] == ["good-0", "good-1", "fail-0", "fail-1"]
    bad = inst.tasks(state="failed")
    assert [(t.key, t.state, t.step, t.state_name) for t in bad] == [
        ("fail-0", "failed", 1, "failed.1"), ("fail-1", "failed", 1, "failed.1")]
    for t in bad:
        assert t.message == "step 1 exited with status 3"
        assert t.out_log == str(failed / ".drypipe" / t.key / "out.log")
        assert "step 1 sees no marker" in open(t.out_log).read()
    assert [t.key for t in inst.tasks(key="good-*")] == ["good-0", "good-1"]
    assert [t.key for t in inst.tasks(state="completed", key="*-1")] == ["good-1"]
    assert [t.key for t in inst.tasks(key="fail-[1]")] == ["fail-1"]
    assert inst.tasks(state="waiting") == [] and inst.tasks(key="nothing-*") == []


def test_task_by_key(failed):
    inst = Instance(str(failed))
    t = inst.task("fail-1")
    assert (t.key, t.state_name, t.executer_type) == ("fail-1", "failed.1", "process")
    assert t.launched_at <= t.started_at <= t.ended_at
    assert t.duration == pytest.approx(t.ended_at - t.started_at)
    assert t.output_dir == str(failed / "output" / "fail-1")
    assert os.path.exists(os.path.join(t.output_dir, "stale.txt"))
    assert t.job_id and t.job_id.isdigit()
    assert inst.task("good-0").state_name == "completed" and inst.task("good-0").message is None
    with pytest.raises(DryPipeError, match="no task 'nope' in "):
        inst.task("nope")


def test_task_takes_a_key_not_a_glob(failed):
    with pytest.raises(DryPipeError, match=r"no task 'fail-\*' in "):
        Instance(str(failed)).task("fail-*")


def test_outputs_are_typed_values_and_file_paths(typed, failed):
    inst = Instance(str(typed))
    src = inst.outputs("src")
    assert src == {"n": 42, "ratio": 2.5, "flag": True, "f": str(typed / "output" / "src" / "data.txt")}
    assert [type(src[k]) for k in ("n", "ratio", "flag")] == [int, float, bool]
    assert open(src["f"]).read() == "line1\nline2\n"
    use = inst.outputs("use")
    assert use == {"total": 126.0} and type(use["total"]) is float
    assert Instance(str(failed)).outputs("good-1") == {"sq": 1}
    with pytest.raises(DryPipeError, match="no task 'nope'"):
        inst.outputs("nope")


def test_transitions_and_counts(failed):
    inst = Instance(str(failed))
    trans = inst.transitions()
    assert set(trans) == {"good-0", "good-1", "fail-0", "fail-1"}
    assert [(s, n) for s, n, _ in trans["fail-0"]] == [
        ("launched", None), ("step-started", 0), ("step-started", 1), ("failed", 1)]
    assert [(s, n) for s, n, _ in trans["good-1"]] == [("launched", None), ("step-started", 0), ("completed", None)]
    times = [at for _, _, at in trans["fail-0"]]
    assert times == sorted(times)
    assert inst.transitions(key="good-0") == {"good-0": trans["good-0"]}
    assert inst.counts() == {"completed": 2, "failed": 2}


def test_execution_times(tmp_path):
    run(tmp_path, "timed", check=True)
    inst = Instance(str(tmp_path))
    times = inst.execution_times(key="align-*")
    assert [t["key"] for t in times] == ["align-0", "align-1", "align-2"]
    for t in times:
        assert t["state"] == "completed"
        assert set(t["steps"]) == {0, 1}
        assert t["steps"][0] >= 0.1 and t["steps"][1] >= 0.2
        assert t["duration"] >= t["steps"][0] + t["steps"][1] - 0.01
    assert len(inst.execution_times()) == 6


def test_running_orchestrator(tmp_path):
    inst_dir = tmp_path / "instance"
    proc = subprocess.Popen([sys.executable, "-m", "drypipe", "run", "-q", "-pid", str(inst_dir),
                             "--generator", f"{GEN}:blocking"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: (inst_dir / ".drypipe" / "blocker" / "state.step-started.0").exists(),
                   what="blocker to start")
        inst = Instance(str(inst_dir))
        assert inst.running_orchestrator == proc.pid
    finally:
        (inst_dir / "release").touch()
        proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert inst.running_orchestrator is None


def test_restart_glob_resumes_or_resets_matching_failed_tasks(tmp_path):
    run(tmp_path, "several_fail")
    inst = Instance(str(tmp_path))
    res = inst.restart("fail-*")  # resumed at step 1, and they fail again
    assert sorted(n.key for n in res.failed) == ["fail-0", "fail-1"] and not res.ok
    assert sorted(executions(tmp_path)) == sorted(
        ["good-0 step0", "good-1 step0"] + [f"fail-{i} step{s}" for i in (0, 1) for s in (0, 1, 1)])

    (tmp_path / "pass-step-1").touch()
    (tmp_path / "executions.txt").write_text("")
    res = inst.restart("fail-*", reset=True)
    assert res.ok and res.failed == []
    assert sorted(executions(tmp_path)) == sorted(f"fail-{i} step{s}" for i in (0, 1) for s in (0, 1, 2))
    assert inst.counts() == {"completed": 4}
    for i in (0, 1):
        assert sorted(os.listdir(tmp_path / "output" / f"fail-{i}")) == ["result.txt"]  # stale.txt is gone
        assert inst.outputs(f"fail-{i}")["c"] == "a=7 b=8"
    assert inst.running_orchestrator is None  # the instance is released


def test_restart_of_a_glob_matching_nothing_is_an_error(failed):
    with pytest.raises(DryPipeError, match=r"no task 'zzz-\*'"):
        Instance(str(failed)).restart("zzz-*")


def test_a_directory_that_is_not_an_instance(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    for d in (empty, tmp_path / "missing"):
        with pytest.raises(DryPipeError, match="not a pipeline instance"):
            Instance(str(d))
    assert os.listdir(empty) == []  # opening for reading creates nothing
    assert not (tmp_path / "missing").exists()
    garbage = tmp_path / "garbage"
    (garbage / ".drypipe").mkdir(parents=True)
    (garbage / ".drypipe" / "drypipe.db").write_text("this is not sqlite" * 100)
    with pytest.raises(DryPipeError, match="not a DryPipe database"):
        Instance(str(garbage))
