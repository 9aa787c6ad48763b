"""A task's last bash step runs in its launcher's own process (no subshell forked for it) and
ends exactly as it would in a subshell: its exit status, errexit and pipefail, out.log, output
variables; what it changes in the shell does not reach the launcher's checks; a step with a
trap, exec, eval or source of its own keeps its subshell."""
import os
import signal
import subprocess
import sys

from conftest import REPO, drypipe, wait_until
from drypipe.runtime.render import parse_output_vars, runs_inline
from test_engine import assert_state_files_match_db, db_states

GEN = "tests.pipelines.inline"


def run(inst, gen, check=None):
    return drypipe("run", "-pid", inst, "--generator", f"{GEN}:{gen}", cwd=REPO, check=check)


def launcher_pid(inst, key):
    text = (inst / ".drypipe" / key / "drypipe.log").read_text()
    return int(text.split(" pid=")[1].split()[0])


def test_last_bash_step_runs_in_the_launcher_process(instance_dir):
    run(instance_dir, "pids", check=True)
    out = instance_dir / "output"
    assert int((out / "inline" / "pid.txt").read_text()) == launcher_pid(instance_dir, "inline")
    # a step with its own EXIT trap keeps a subshell, and its trap runs when the step ends
    assert int((out / "own-trap" / "pid.txt").read_text()) != launcher_pid(instance_dir, "own-trap")
    assert "bye from the trap" in (instance_dir / ".drypipe" / "own-trap" / "out.log").read_text()
    # of two steps, only the last runs in the launcher
    first, last = map(int, (out / "two-steps" / "pid.txt").read_text().split())
    assert first != launcher_pid(instance_dir, "two-steps") == last


def test_inline_step_endings_match_a_subshells(instance_dir):
    res = run(instance_dir, "endings", check=False)
    states = db_states(instance_dir)
    assert states == {
        "exit-3": "failed.0", "errexit": "failed.0", "pipefail": "failed.0", "stderr": "failed.0",
        "exit-0": "completed", "clobbers": "completed", "var-exit-0": "completed",
        "var-returns": "completed", "missing-output": "failed.0"}, res
    assert_state_files_match_db(instance_dir)
    task, out = instance_dir / ".drypipe", instance_dir / "output"
    assert "step 0 exited with status 3" in (task / "exit-3" / "drypipe.log").read_text()
    assert (out / "errexit" / "out.txt").read_text() == "before\n"
    assert "step 0 exited with status 1" in (task / "pipefail" / "drypipe.log").read_text()
    log = (task / "stderr" / "out.log").read_text()
    assert "oops" in log and "step 0 exited with status 4" in log
    assert "oops" not in (task / "stderr" / "drypipe.log").read_text()
    assert (out / "exit-0" / "out.txt").read_text() == "hi\n"
    # `out`, the directory, -u, IFS and -x changed by the step: the checks still see the task's
    assert (out / "clobbers" / "out.txt").read_text() == "7\n"
    assert "+ " not in (task / "clobbers" / "drypipe.log").read_text()
    for key, value in (("var-exit-0", "5"), ("var-returns", "6")):
        assert parse_output_vars((task / key / "output-vars").read_bytes()) == {"n": value}
    assert "output file out (output/missing-output/out.txt) was not produced" in \
        (task / "missing-output" / "drypipe.log").read_text()


def test_interrupted_inline_step_is_killed_and_says_so_in_drypipe_log(instance_dir):
    proc = subprocess.Popen([sys.executable, "-m", "drypipe", "run", "-q", "-pid", str(instance_dir),
                             "--generator", f"{GEN}:sleeper"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        task = instance_dir / ".drypipe" / "sleeper"
        wait_until(lambda: (task / "state.step-started.0").exists(), what="sleeper to start")
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert db_states(instance_dir) == {"sleeper": "killed.0"}
    assert "received signal" in (task / "drypipe.log").read_text()
    assert "received signal" not in (task / "out.log").read_text()


def test_which_snippets_run_inline():
    assert runs_inline('echo $i > $out') and runs_inline("cat ./a.txt > b.1") and runs_inline('echo "executive"')
    for s in ("trap 'rm -f x' EXIT", "exec > log", "eval \"$cmd\"", "source env.sh", ". env.sh",
              "x=1; . ./env.sh"):
        assert not runs_inline(s), s
