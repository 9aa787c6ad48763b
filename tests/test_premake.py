"""While a local task runs, the task dirs of the tasks waiting only for it are written ahead
(scheduler/materialize.py, premake), so that their launch is quicker; at rest, a task never
launched still has no task dir."""
import subprocess
import sys

from conftest import REPO, wait_until
from test_engine import assert_state_files_match_db, db_states

GEN = "tests.pipelines.premake:pipeline"


def _run(inst):
    return subprocess.Popen([sys.executable, "-m", "drypipe", "run", "-q", "-pid", str(inst), "--generator", GEN],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_the_next_task_dir_is_written_while_its_upstream_runs(instance_dir):
    proc = _run(instance_dir)
    try:
        second = instance_dir / ".drypipe" / "second"
        wait_until(lambda: (second / "state.waiting").exists(), what="second's task dir written ahead")
        assert {p.name for p in second.iterdir()} == {"task", "task-env.sh", "task-conf.json", "state.waiting"}
        assert not (instance_dir / "output" / "second").exists()  # made at its launch
        # a task reading an output variable waits for its value: its environment holds it
        assert not (instance_dir / ".drypipe" / "reads-var").exists()
        assert db_states(instance_dir)["second"] == "waiting"
        (instance_dir / "release").touch()
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert db_states(instance_dir) == {"first": "completed", "second": "completed", "reads-var": "completed"}
    assert (instance_dir / "output" / "second" / "out.txt").read_text() == "1\n"
    assert_state_files_match_db(instance_dir)


def test_a_task_dir_written_ahead_goes_when_its_upstream_fails(instance_dir):
    proc = _run(instance_dir)
    try:
        second = instance_dir / ".drypipe" / "second"
        wait_until(lambda: (second / "state.waiting").exists(), what="second's task dir written ahead")
        first = instance_dir / ".drypipe" / "first" / "task"
        subprocess.run([str(first), "kill"], check=True, timeout=10)
        proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert db_states(instance_dir) == {"first": "killed.0", "second": "waiting", "reads-var": "waiting"}
    assert not second.exists()  # never launched: no task dir, as before the run
    assert_state_files_match_db(instance_dir)
