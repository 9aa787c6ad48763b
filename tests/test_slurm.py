"""DryPipe on the real single-node Slurm cluster (scripts/slurm-up.sh).

Tasks with TaskConf(executer_type="slurm") become job arrays; the orchestrator follows them
with one `squeue --name=<instance job name>` per polling round. These tests run pipelines of
tests/pipelines/slurm.py through the `drypipe` CLI against the cluster whose client env is in
<services dir>/slurm.env (services dir: $DRYPIPE_TEST_SERVICES, default <repo>/.test-services),
and skip when it is absent. The last tests need no cluster: a fake runner stands in for Slurm.
"""
from __future__ import annotations

import math
import os
import re
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, drypipe, service_env, state_files, wait_until
from drypipe.executors import slurm as slurm_executor
from drypipe.executors.slurm import SlurmEnded, SlurmExecutor, ended_state

GEN = "tests.pipelines.slurm"
FAST_POLL = "0,1,2"  # --sleep-schedule for the tests: a finished job is seen within ~2 s
JOB_ID = re.compile(r"^\d+_\d+$")  # '<array job>_<index>'
QUEUE_WAIT = 180  # deadline for a job to start: the cluster (2 CPUs) may be busy with other jobs


# ---------------------------------------------------------------- fixtures and helpers




@pytest.fixture(scope="module")
def slurm_env() -> dict[str, str]:
    """The client env of the test cluster (SLURM_CONF=...), over this process's env."""
    return {**os.environ, **service_env("slurm.env", "slurm-up.sh"), "DRYPIPE_SERVICE_SLEEP_SCHEDULE": FAST_POLL}


@pytest.fixture
def instance(slurm_env, tmp_path):
    """instance(name) -> a new instance dir; its Slurm jobs still queued at teardown are cancelled."""
    made = []

    def make(name="inst"):
        made.append(tmp_path / name)
        return made[-1]
    yield make
    for inst in made:
        subprocess.run(["scancel", f"--name={slurm_executor.job_name(str(inst))}"], env=slurm_env,
                       capture_output=True, timeout=30)


def slurm_cmd(env, *argv, timeout=60) -> str:
    proc = subprocess.run(list(argv), env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{argv} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def run(inst, gen, env, *extra, check=None, timeout=300):
    return drypipe("run", "-q", "-pid", inst, "--generator", f"{GEN}:{gen}", *extra, cwd=REPO, env=env,
                   check=check, timeout=timeout)


def start_run(inst, gen, env) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "drypipe", "run", "-q", "-pid", str(inst),
                             "--generator", f"{GEN}:{gen}"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen, timeout: float, what: str) -> tuple[int, str]:
    """Wait (with a deadline) for a `drypipe run` started by start_run; its rc and stderr."""
    try:
        wait_until(lambda: proc.poll() is not None, timeout=timeout, interval=0.2, what=what)
    finally:
        if proc.poll() is None:
            proc.kill()
    out, err = proc.communicate()
    return proc.returncode, out + err


def db(inst) -> dict[str, dict]:
    """Task key -> its row (state name, job id, executer type, message) in the instance DB."""
    con = sqlite3.connect(f"file:{inst / '.drypipe' / 'drypipe.db'}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT key, state, step, job_id, executer_type, message FROM task").fetchall()
    finally:
        con.close()
    return {k: {"state": s if st is None else f"{s}.{st}", "job_id": j, "executer_type": e, "message": m}
            for k, s, st, j, e, m in rows}


def db_states(inst) -> dict[str, str]:
    return {k: r["state"] for k, r in db(inst).items()}


def output_vars(inst) -> dict[str, dict[str, str]]:
    con = sqlite3.connect(f"file:{inst / '.drypipe' / 'drypipe.db'}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT key, name, value FROM output_var JOIN task ON task.id = task_id").fetchall()
    finally:
        con.close()
    out: dict[str, dict[str, str]] = {}
    for k, n, v in rows:
        out.setdefault(k, {})[n] = v
    return out


def transitions(inst) -> dict[str, list[str]]:
    con = sqlite3.connect(f"file:{inst / '.drypipe' / 'drypipe.db'}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT key, state, step FROM transitions").fetchall()
    finally:
        con.close()
    out: dict[str, list[str]] = {}
    for k, s, st in rows:
        out.setdefault(k, []).append(s if st is None else f"{s}.{st}")
    return out


def assert_state_files_match_db(inst):
    states = db_states(inst)
    for key, files in state_files(inst).items():
        assert files == [f"state.{states[key]}"], (key, files, states[key])


def tree(root: Path) -> dict[str, bytes | None]:
    """Relative path -> content (None for a dir) of everything under root."""
    return {str(p.relative_to(root)): None if p.is_dir() else p.read_bytes() for p in sorted(root.rglob("*"))}


def probe(inst, key) -> dict[str, str]:
    """What the task saw inside its job (see PROBE in tests/pipelines/slurm.py)."""
    scratch, tmpdir, job, usable = (inst / "probe" / key).read_text().strip().split("|")
    return {"scratch": scratch, "tmpdir": tmpdir, "job": job, "usable": usable}


def queue_states(env, job_name: str) -> dict[str, str]:
    """Job id -> Slurm state of every job (finished ones included) with this name."""
    out = slurm_cmd(env, "squeue", "-h", "-r", "-t", "all", f"--name={job_name}", "-o", "%i|%T")
    return dict(line.split("|") for line in out.split())


def max_array_size(env) -> int:
    m = re.search(r"^MaxArraySize\s*=\s*(\d+)", slurm_cmd(env, "scontrol", "show", "config"), re.M)
    assert m, "no MaxArraySize in `scontrol show config`"
    return int(m.group(1))


def shim(tmp_path: Path, env: dict[str, str]) -> tuple[dict[str, str], Path]:
    """A bin dir with sbatch and squeue wrappers logging their argv (one line per call), first
    on PATH of the returned env; returns that env and the log. While the file
    <tmp_path>/kill-after-sbatch exists, the next sbatch call SIGKILLs its caller (the
    orchestrator) once the real sbatch has submitted the job (and removes that file)."""
    bin_dir = tmp_path / "shim-bin"
    bin_dir.mkdir()
    log = tmp_path / "slurm-calls.log"
    log.touch()
    flag = shlex.quote(str(tmp_path / "kill-after-sbatch"))
    for cmd in ("sbatch", "squeue"):
        real = shlex.quote(shutil.which(cmd, path=env.get("PATH")) or f"/usr/bin/{cmd}")
        killer = (f'if [[ -e {flag} ]]; then rm -f {flag}; {real} "$@"; rc=$?; kill -KILL "$PPID"; exit $rc; fi\n'
                  if cmd == "sbatch" else "")
        script = bin_dir / cmd
        script.write_text("#!/usr/bin/env bash\n"
                          f'printf "%s\\n" "{cmd} $*" >> {shlex.quote(str(log))}\n'
                          f'{killer}exec {real} "$@"\n')
        script.chmod(0o755)
    return {**env, "PATH": f"{bin_dir}:{env.get('PATH', '')}"}, log


def calls(log: Path, cmd: str) -> list[str]:
    return [line for line in log.read_text().splitlines() if line.split(" ", 1)[0] == cmd]


# ---------------------------------------------------------------- 1. the guide's fan-out on Slurm


@pytest.mark.slurm
def test_fan_out_fan_in_on_slurm_matches_a_local_run(slurm_env, instance, tmp_path):
    on_slurm, local = instance("on-slurm"), tmp_path / "local"
    run(on_slurm, "fanout_slurm", slurm_env, check=True)
    run(local, "fanout_local", slurm_env, check=True)

    keys = {"prep", "work.1", "work.2", "work.3", "work.4", "sum"}
    assert set(db_states(on_slurm)) == keys
    # same results: files, variables, state files and the states each task went through
    assert tree(on_slurm / "output") == tree(local / "output")
    assert output_vars(on_slurm) == output_vars(local)
    assert output_vars(on_slurm)["sum"] == {"t": "4", "n_files": "4"}
    assert (on_slurm / "output" / "sum" / "summary.txt").read_text().splitlines()[:2] == [
        "bash counted 4 files", "4 result files; total=326; labels=w1:14:1,w2:45:2,w3:97:3,w4:170:4"]
    assert state_files(on_slurm) == state_files(local) == {k: ["state.completed"] for k in keys}
    assert transitions(on_slurm) == transitions(local)
    assert transitions(on_slurm)["work.1"] == ["launched", "step-started.0", "step-started.1", "completed"]
    assert_state_files_match_db(on_slurm)

    rows = db(on_slurm)
    assert {r["executer_type"] for r in rows.values()} == {"slurm"}
    assert {r["executer_type"] for r in db(local).values()} == {"process"}
    # the job ids are Slurm's: the job each task ran in, under the instance's job name
    name = slurm_executor.job_name(str(on_slurm))
    in_queue = queue_states(slurm_env, name)
    for key, r in rows.items():
        assert JOB_ID.match(r["job_id"]), (key, r["job_id"])
        assert probe(on_slurm, key)["job"] == r["job_id"], key
        assert in_queue.get(r["job_id"]) == "COMPLETED", (key, r["job_id"], in_queue)
        assert (on_slurm / ".drypipe" / key / "sbatch-launcher.sh").is_file(), key
    # the four work tasks, ready together, were one array
    assert len({rows[f"work.{i}"]["job_id"].split("_")[0] for i in range(1, 5)}) == 1
    # inside a job, $__scratch_dir is the job's private $SLURM_TMPDIR; locally, under the output dir
    for key in keys:
        p = probe(on_slurm, key)
        assert p["tmpdir"] and p["scratch"] == p["tmpdir"] and p["usable"] == "yes", (key, p)
        assert p["tmpdir"] != str(on_slurm / "output" / key / "scratch")
        lp = probe(local, key)
        assert lp == {"scratch": str(local / "output" / key / "scratch"), "tmpdir": "", "job": "",
                      "usable": "yes"}, key


# ---------------------------------------------------------------- 2. a failing step


@pytest.mark.slurm
def test_failing_step_ends_failed_at_that_step(slurm_env, instance):
    inst = instance()
    res = run(inst, "failing", slurm_env)
    assert res.returncode == 1, res
    log = inst / ".drypipe" / "fails-at-1" / "out.log"
    assert "fails-at-1: failed.1" in res.stderr and str(log) in res.stderr, res
    assert db_states(inst) == {"fails-at-1": "failed.1", "fine": "completed"}
    assert "step 1 exited with status 3" in log.read_text()
    assert "never" not in log.read_text()
    assert_state_files_match_db(inst)
    row = db(inst)["fails-at-1"]
    assert JOB_ID.match(row["job_id"]) and probe(inst, "fails-at-1")["job"] == row["job_id"]


# ---------------------------------------------------------------- 3. cancelled jobs


@pytest.mark.slurm
def test_cancelled_jobs_end_killed(slurm_env, instance):
    inst = instance()
    proc = start_run(inst, "long_tasks", slurm_env)
    try:
        keys = ("cancel-by-scancel", "cancel-by-task-kill")
        wait_until(lambda: all((inst / "output" / k / "running").exists() for k in keys), timeout=QUEUE_WAIT,
                   interval=0.2, what="both long tasks to run their step 1")
        wait_until(lambda: all(db(inst)[k]["job_id"] for k in keys), timeout=10, what="job ids in the DB")
        job = db(inst)["cancel-by-scancel"]["job_id"]
        slurm_cmd(slurm_env, "scancel", job)
        slurm_cmd(slurm_env, "bash", str(inst / ".drypipe" / "cancel-by-task-kill" / "task"), "kill")
        rc, out = finish(proc, 60, "`drypipe run` to end after the cancellations")
    finally:
        if proc.poll() is None:
            proc.kill()
    assert rc == 1, out
    assert db_states(inst) == {"cancel-by-scancel": "killed.1", "cancel-by-task-kill": "killed.1"}, out
    assert "cancel-by-scancel: killed.1" in out and "cancel-by-task-kill: killed.1" in out, out
    assert_state_files_match_db(inst)
    states = queue_states(slurm_env, slurm_executor.job_name(str(inst)))
    assert {states[db(inst)[k]["job_id"]] for k in keys} == {"CANCELLED"}


@pytest.mark.slurm
def test_running_slurm_task_shows_its_step_in_the_db(slurm_env, instance):
    inst = instance()
    proc = start_run(inst, "one_long_task", slurm_env)
    try:
        wait_until(lambda: (inst / "output" / "long" / "running").exists(), timeout=QUEUE_WAIT, interval=0.2,
                   what="the task to run its step 1")
        assert state_files(inst) == {"long": ["state.step-started.1"]}
        # local tasks: refreshed every 2 s (POLL_RUNNING_EVERY); Slurm ones at least at each squeue
        wait_until(lambda: db_states(inst) == {"long": "step-started.1"}, timeout=8, interval=0.2,
                   what="the DB to say step-started.1 while the job runs")
        res = drypipe("list-states", "-pid", inst, cwd=REPO, env=slurm_env, check=True)
        assert "step-started.1" in res.stdout, res
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.slurm
def test_sbatch_refusal_fails_the_task_with_sbatchs_error(slurm_env, instance):
    inst = instance()
    res = run(inst, "refused", slurm_env)
    assert res.returncode == 1, res
    assert db_states(inst) == {"bad-partition": "failed.0", "bad-option": "failed.0"}
    assert "bad-partition: failed.0" in res.stderr and "bad-option: failed.0" in res.stderr, res
    assert_state_files_match_db(inst)
    rows = db(inst)
    assert all(r["job_id"] is None for r in rows.values())
    for key, error in (("bad-partition", "Batch job submission failed: Invalid partition name specified"),
                       ("bad-option", "unrecognized option '--no-such-option'")):
        message = rows[key]["message"]
        assert message.startswith("sbatch failed: sbatch: ") and error in message, (key, message)
        assert "['" not in message and "--help" not in message, (key, message)


# ---------------------------------------------------------------- 4. time limit (the slow one)


@pytest.mark.slurm
def test_time_limit_ends_timed_out(slurm_env, instance):
    inst = instance()
    proc = start_run(inst, "time_limit", slurm_env)
    try:
        wait_until(lambda: (inst / "output" / "too-long" / "running").exists() or proc.poll() is not None,
                   timeout=QUEUE_WAIT, interval=0.2, what="the job to start")
    finally:
        if proc.poll() is None and not (inst / "output" / "too-long" / "running").exists():
            proc.kill()
    # Slurm enforces a 1-minute limit after about 75 s
    rc, out = finish(proc, 200, "Slurm to enforce --time=1 and `drypipe run` to end")
    assert (inst / "output" / "too-long" / "running").exists(), out  # it did run
    assert rc == 1 and "too-long: timed-out.0" in out, out
    row = db(inst)["too-long"]
    assert row["state"] == "timed-out.0" and "time limit" in row["message"], row
    assert_state_files_match_db(inst)
    assert queue_states(slurm_env, slurm_executor.job_name(str(inst)))[row["job_id"]] == "TIMEOUT"


# ---------------------------------------------------------------- 5. hundreds of tasks, few Slurm calls


@pytest.mark.slurm
def test_200_tasks_use_few_sbatch_and_squeue_calls(slurm_env, instance, tmp_path):
    n = 200
    inst = instance()
    env, log = shim(tmp_path, slurm_env)
    env["SLURM_TEST_N"] = str(n)
    started = time.monotonic()
    run(inst, "many", env, check=True, timeout=300)
    elapsed = time.monotonic() - started

    rows = db(inst)
    assert len(rows) == n and {r["state"] for r in rows.values()} == {"completed"}
    for i in range(n):
        assert (inst / "output" / f"t-{i}" / "out.txt").read_text() == f"{i}\n"
        assert (inst / "runs" / f"t-{i}").read_text() == f"t-{i}\n"
    assert_state_files_match_db(inst)

    max_array = max_array_size(slurm_env)
    sbatches, squeues = calls(log, "sbatch"), calls(log, "squeue")
    assert 1 <= len(sbatches) <= math.ceil(n / max_array), sbatches
    assert all("--array=" in c for c in sbatches), sbatches
    arrays = {r["job_id"].split("_")[0] for r in rows.values()}
    assert len(arrays) == len(sbatches)
    assert all(JOB_ID.match(r["job_id"]) and int(r["job_id"].split("_")[1]) < max_array for r in rows.values())
    name = slurm_executor.job_name(str(inst))
    for c in squeues:  # each one a single query for all the jobs of the instance
        argv = c.split()
        assert f"--name={name}" in argv and "-j" not in argv and not any(a.startswith("--jobs") for a in argv), c
    assert 1 <= len(squeues) <= n // 5, (len(squeues), elapsed)
    print(f"{n} tasks in {elapsed:.1f} s: {len(sbatches)} sbatch, {len(squeues)} squeue (MaxArraySize {max_array})")


# ---------------------------------------------------------------- 6. orchestrator killed, jobs re-attached


@pytest.mark.slurm
def test_killed_orchestrator_reattaches_to_running_jobs(slurm_env, instance, tmp_path):
    n = 6
    inst = instance()
    env, log = shim(tmp_path, slurm_env)
    env.update(SLURM_TEST_N=str(n), SLURM_TEST_SLEEP="4")
    proc = start_run(inst, "many", env)
    try:
        def submitted_and_running():
            if not (inst / ".drypipe" / "drypipe.db").exists():
                return False
            try:
                jobs = [r["job_id"] for r in db(inst).values()]
            except sqlite3.OperationalError:
                return False
            running = list((inst / ".drypipe").glob("t-*/state.step-started.0"))
            return len(jobs) == n and all(jobs) and running
        wait_until(submitted_and_running, timeout=QUEUE_WAIT, interval=0.1, what="jobs submitted and running")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    jobs_before = {k: r["job_id"] for k, r in db(inst).items()}
    done_before = [k for k, f in state_files(inst).items() if f == ["state.completed"]]
    assert len(done_before) < n, "every job ended before the kill: nothing left to re-attach"
    sbatch_before = calls(log, "sbatch")
    assert len(sbatch_before) == 1

    res = run(inst, "many", env, check=True, timeout=300)
    assert calls(log, "sbatch") == sbatch_before, "jobs were resubmitted"
    rows = db(inst)
    assert {k: r["job_id"] for k, r in rows.items()} == jobs_before
    assert {r["state"] for r in rows.values()} == {"completed"}, res
    for i in range(n):  # each task ran once
        assert (inst / "runs" / f"t-{i}").read_text() == f"t-{i}\n"
        assert (inst / "output" / f"t-{i}" / "out.txt").read_text() == f"{i}\n"
    assert_state_files_match_db(inst)
    name = slurm_executor.job_name(str(inst))
    assert all(f"--name={name}" in c.split() for c in calls(log, "squeue"))


@pytest.mark.slurm
def test_orchestrator_killed_right_after_sbatch_does_not_resubmit(slurm_env, instance, tmp_path):
    n = 4
    inst = instance()
    env, log = shim(tmp_path, slurm_env)
    env.update(SLURM_TEST_N=str(n), SLURM_TEST_SLEEP="1")
    (tmp_path / "kill-after-sbatch").touch()  # the shim SIGKILLs the orchestrator after sbatch
    res = run(inst, "many", env, timeout=120)
    assert res.returncode == -signal.SIGKILL, res
    assert not (tmp_path / "kill-after-sbatch").exists() and len(calls(log, "sbatch")) == 1
    queued = queue_states(slurm_env, slurm_executor.job_name(str(inst)))
    assert len(queued) == n, queued  # Slurm accepted the array
    array_job = next(iter(queued)).split("_")[0]

    run(inst, "many", env, check=True, timeout=300)
    assert len(calls(log, "sbatch")) == 1, "the array was submitted again"
    rows = db(inst)
    assert {r["state"] for r in rows.values()} == {"completed"}
    assert {r["job_id"].split("_")[0] for r in rows.values()} == {array_job}
    wait_until(lambda: all(s == "COMPLETED" for s in queue_states(slurm_env, slurm_executor.job_name(
        str(inst))).values()), timeout=QUEUE_WAIT, interval=0.2, what="every job of the instance to end")
    for i in range(n):  # each task ran once
        assert (inst / "runs" / f"t-{i}").read_text() == f"t-{i}\n"
    assert_state_files_match_db(inst)


# ---------------------------------------------------------------- 7. sbatch-gen and sbatch


@pytest.mark.slurm
def test_sbatch_wait_then_sbatch_gen_command_resubmits(slurm_env, instance):
    inst = instance()
    drypipe("prepare", "-pid", inst, "--generator", f"{GEN}:by_hand", cwd=REPO, env=slurm_env, check=True)
    res = drypipe("sbatch", "-pid", inst, "--task-key", "hand-b", "--wait", cwd=REPO, env=slurm_env,
                  check=True, timeout=300)
    row = db(inst)["hand-b"]
    assert row["state"] == "completed" and JOB_ID.match(row["job_id"]), row
    assert f"task hand-b: completed (job {row['job_id']})" in res.stdout, res
    assert db_states(inst)["hand-a"] == "ready"  # nothing else was started
    assert (inst / "output" / "hand-b" / "f.txt").read_text() == "hand-b\n"
    assert probe(inst, "hand-b")["job"] == row["job_id"]
    assert_state_files_match_db(inst)

    # the command sbatch-gen prints submits the task again
    res = drypipe("sbatch-gen", "-pid", inst, "--task-key", "hand-b", cwd=REPO, env=slurm_env, check=True)
    cmd = res.stdout.strip()
    assert "sbatch" in cmd and ".drypipe/hand-b/sbatch-launcher.sh" in cmd, cmd
    job = slurm_cmd(slurm_env, "bash", "-c", cmd).strip().split(";")[0]
    assert job.isdigit(), job
    wait_until(lambda: (inst / "runs" / "hand-b").read_text().count("\n") == 2 and
               (inst / ".drypipe" / "hand-b" / "state.completed").exists(),
               timeout=QUEUE_WAIT, interval=0.2, what="the job submitted by hand to run the task")
    assert probe(inst, "hand-b")["job"] == job
    wait_until(lambda: queue_states(slurm_env, slurm_executor.job_name(str(inst))).get(job) == "COMPLETED",
               timeout=30, interval=0.2, what=f"job {job} to be COMPLETED")


@pytest.mark.slurm
def test_sbatch_gen_command_submits_a_prepared_task(slurm_env, instance):
    inst = instance()
    drypipe("prepare", "-pid", inst, "--generator", f"{GEN}:by_hand", cwd=REPO, env=slurm_env, check=True)
    cmd = drypipe("sbatch-gen", "-pid", inst, "--task-key", "hand-a", cwd=REPO, env=slurm_env,
                  check=True).stdout.strip()
    job = slurm_cmd(slurm_env, "bash", "-c", cmd).strip().split(";")[0]
    assert job.isdigit(), job
    wait_until(lambda: (inst / ".drypipe" / "hand-a" / "state.completed").exists(), timeout=QUEUE_WAIT, interval=0.2,
               what="the job submitted by hand to complete the task")
    assert (inst / "output" / "hand-a" / "f.txt").read_text() == "hand-a\n"
    assert probe(inst, "hand-a")["job"] == job
    run(inst, "by_hand", slurm_env, check=True)
    assert db_states(inst) == {"hand-a": "completed", "hand-b": "completed"}
    assert_state_files_match_db(inst)


# ---------------------------------------------------------------- 8. a job that vanished (fake Slurm)


def completed(argv, stdout="", returncode=0):
    return subprocess.CompletedProcess(argv, returncode, stdout, "")


def old_task_dir(instance: Path, key: str, state: str) -> Path:
    """A task dir whose launcher was written (so its job submitted) an hour ago."""
    tdir = instance / ".drypipe" / key
    tdir.mkdir(parents=True)
    (tdir / "task").write_text("#!/usr/bin/env bash\n")
    (tdir / f"state.{state}").touch()
    hour_ago = time.time() - 3600
    os.utime(tdir / "task", (hour_ago, hour_ago))
    return tdir


def test_poll_reports_a_job_missing_from_squeue_as_vanished(tmp_path):
    seen = []

    def runner(argv, cwd=None, timeout=300):
        seen.append(argv)
        assert argv[0] == "squeue"
        return completed(argv, "7_1|RUNNING|None\n")  # 7_0 is not listed; neither is 8_0

    old_task_dir(tmp_path, "gone", "step-started.1")
    old_task_dir(tmp_path, "alive", "step-started.0")
    fresh = tmp_path / ".drypipe" / "fresh"  # just submitted: squeue may not list it yet
    fresh.mkdir()
    (fresh / "task").touch()
    (fresh / "state.launched").touch()
    ex = SlurmExecutor(str(tmp_path), runner=runner)
    hour_ago = time.time() - 3600
    ex.watch("gone", "7_0", hour_ago)
    ex.watch("alive", "7_1", hour_ago)
    ex.watch("fresh", "8_0")  # submitted now
    ended = ex.poll(force=True)
    assert [(e.key, e.slurm_state) for e in ended] == [("gone", "VANISHED")]
    assert ex.jobs == {"alive": "7_1", "fresh": "8_0"}
    assert len(seen) == 1 and f"--name={ex.job_name}" in seen[0] and "-j" not in seen[0]
    state, step, message = ended_state("step-started.1", ended[0], 1)
    assert (state, step) == ("failed", 1) and "vanished" in message


@pytest.mark.parametrize("state_file,slurm_state,expected", [
    ("step-started.2", "VANISHED", ("failed", 2)),
    ("launched", "VANISHED", ("failed", 0)),
    ("killed.1", "CANCELLED", ("killed", 1)),
    ("killed.0", "TIMEOUT", ("timed-out", 0)),
    ("completed", "VANISHED", ("completed", None)),
    ("failed.1", "FAILED", ("failed", 1)),
    ("step-started.0", "NODE_FAIL", ("failed", 0)),
])
def test_ended_state(state_file, slurm_state, expected):
    state, step, message = ended_state(state_file, SlurmEnded("k", None, slurm_state=slurm_state, reason="None"), None)
    assert (state, step) == expected
    if slurm_state == "VANISHED" and state == "failed":
        assert "vanished" in message


def test_orchestrator_marks_a_vanished_job_failed(tmp_path):
    """sbatch accepts the array, then squeue never lists it (purged, or a slurmctld that lost it)."""
    from dry_pipe import DryPipe
    from drypipe.scheduler.orchestrator import Orchestrator
    from tests.pipelines import slurm as pipelines

    inst = tmp_path / "inst"
    commands = []

    def runner(argv, cwd=None, timeout=300):
        commands.append(argv[0])
        if argv[0] == "scontrol":
            return completed(argv, "MaxArraySize            = 100\n")
        if argv[0] == "sbatch":
            hour_ago = time.time() - 3600  # submitted long ago
            for task in (inst / ".drypipe").glob("*/task"):
                os.utime(task, (hour_ago, hour_ago))
            return completed(argv, "4242\n")
        if argv[0] == "squeue":
            return completed(argv, "")
        return completed(argv)

    pipeline = DryPipe.create_pipeline(pipelines.failing)
    with Orchestrator(str(inst), pipeline) as orch:
        orch.slurm = SlurmExecutor(orch.instance_dir, sleep_schedule=(0,), runner=runner)
        result = orch.run()
    assert not result.ok
    rows = db(inst)
    assert {k: r["state"] for k, r in rows.items()} == {"fails-at-1": "failed.0", "fine": "failed.0"}
    for r in rows.values():
        assert r["job_id"] in ("4242_0", "4242_1") and "vanished" in r["message"], r
    assert commands.count("sbatch") == 1 and "squeue" in commands
    assert_state_files_match_db(inst)


# ---------------------------------------------------------------- array parents by hand


def _runs(inst) -> dict[str, int]:
    return {p.name: len(p.read_text().splitlines()) for p in (inst / "runs").iterdir()}


@pytest.mark.slurm
def test_array_submit_limit_then_run_takes_over(slurm_env, instance, tmp_path):
    inst = instance()
    env, log = shim(tmp_path, slurm_env)
    drypipe("prepare", "-pid", inst, "--generator", f"{GEN}:array_children", cwd=REPO, env=env, check=True)
    (inst / "fixed").touch()
    drypipe("array-create-parent", "-pid", inst, "--task-key", "big", "--filter", "a-*", cwd=REPO, env=env,
            check=True)
    res = drypipe("array-submit", "-pid", inst, "--task-key", "big", "--limit", "4", cwd=REPO, env=env, check=True)
    assert "submitted 4 tasks" in res.stdout
    sb = calls(log, "sbatch")
    assert len(sb) == 1 and "--array=0-3" in sb[0]
    states = db_states(inst)
    assert [states[f"a-{i}"] for i in range(6)] == ["launched"] * 4 + ["ready"] * 2
    listed = drypipe("list-states", "-pid", inst, "--task-key", "big", cwd=REPO, env=env, check=True).stdout
    assert "6 tasks: 2 ready, 4 launched" in listed
    rsync = drypipe("list-states", "-pid", inst, "--task-key", "big", "--gen-rsync-list", cwd=REPO, env=env,
                    check=True).stdout.split()
    assert rsync[:2] == [".drypipe/a-0/", "output/a-0/"] and len(rsync) == 12
    run(inst, "array_children", env, check=True)  # watches the 4, submits the last 2 itself
    assert set(db_states(inst).values()) == {"completed"}
    assert _runs(inst) == {f"a-{i}": 1 for i in range(6)}
    assert len(calls(log, "sbatch")) == 2


@pytest.mark.slurm
def test_restart_failed_array_tasks_resubmits_only_the_failed_children(slurm_env, instance, tmp_path):
    inst = instance()
    env, log = shim(tmp_path, slurm_env)
    drypipe("prepare", "-pid", inst, "--generator", f"{GEN}:array_children", cwd=REPO, env=env, check=True)
    drypipe("array-create-parent", "-pid", inst, "--task-key", "big", cwd=REPO, env=env, check=True)
    drypipe("array-submit", "-pid", inst, "--task-key", "big", cwd=REPO, env=env, check=True)
    res = run(inst, "array_children", env)
    assert res.returncode == 1
    assert {k: v for k, v in db_states(inst).items() if v != "completed"} == {"a-2": "failed.0", "a-4": "failed.0"}
    (inst / "fixed").touch()
    res = drypipe("restart-failed-array-tasks", "-pid", inst, "--task-key", "big", cwd=REPO, env=env, check=True)
    assert "resubmitted 2 tasks" in res.stdout
    assert "--array=2,4" in calls(log, "sbatch")[-1]
    run(inst, "array_children", env, check=True)
    assert set(db_states(inst).values()) == {"completed"}
    assert _runs(inst) == {**{f"a-{i}": 1 for i in range(6)}, "a-2": 2, "a-4": 2}  # only the failed reran
    assert_state_files_match_db(inst)


@pytest.mark.slurm
def test_include_pre_launch_restarts_children_cancelled_before_they_started(slurm_env, instance, tmp_path):
    inst = instance()
    hold = {**slurm_env}
    drypipe("prepare", "-pid", inst, "--generator", f"{GEN}:array_children", cwd=REPO, env=hold, check=True)
    (inst / "fixed").touch()
    drypipe("array-create-parent", "-pid", inst, "--task-key", "big", cwd=REPO, env=hold, check=True)
    # submitted held (never started), then cancelled: a "pre-launch" failure
    env_held = {**hold, "SBATCH_HOLD": "1"}
    drypipe("array-submit", "-pid", inst, "--task-key", "big", cwd=REPO, env=env_held, check=True)
    job = (inst / ".drypipe" / "big" / "job-id").read_text().split()[-1]
    slurm_cmd(hold, "scancel", job)
    res = run(inst, "array_children", hold)
    assert res.returncode == 1 and set(db_states(inst).values()) == {"killed.0"}
    res = drypipe("restart-failed-array-tasks", "-pid", inst, "--task-key", "big", cwd=REPO, env=hold)
    assert res.returncode == 2 and "--include-pre-launch" in res.stderr  # nothing had started
    drypipe("restart-failed-array-tasks", "-pid", inst, "--task-key", "big", "--include-pre-launch", cwd=REPO,
            env=hold, check=True)
    run(inst, "array_children", hold, check=True)
    assert _runs(inst) == {f"a-{i}": 1 for i in range(6)}


# ---------------------------------------------------------------- array parents by hand, fake Slurm


def _fake_slurm(commands, squeue="", sbatch_ok=True):
    def runner(argv, cwd=None, timeout=300):
        commands.append(argv[0])
        if argv[0] == "scontrol":
            return completed(argv, "MaxArraySize            = 100\n")
        if argv[0] == "sbatch":
            if not sbatch_ok:
                return subprocess.CompletedProcess(argv, 1, "", "sbatch: error: Invalid account\n")
            return completed(argv, "555\n")
        if argv[0] == "squeue":
            return completed(argv, squeue)
        return completed(argv)
    return runner


def _hand_array(inst, runner):
    """The 6 array_children prepared, grouped under the parent `big`; an orchestrator using runner."""
    from dry_pipe import DryPipe
    from drypipe.scheduler import arrays
    from drypipe.scheduler.orchestrator import Orchestrator
    from tests.pipelines import slurm as pipelines
    with Orchestrator(str(inst), DryPipe.create_pipeline(pipelines.array_children)) as orch:
        orch.prepare()
        arrays.create_parent(orch, "big", "a-*")
    orch = Orchestrator(str(inst))
    orch.slurm = SlurmExecutor(orch.instance_dir, sleep_schedule=(0,), runner=runner)
    return orch


def test_a_refused_hand_array_leaves_its_children_ready_to_submit_again(tmp_path):
    from drypipe.errors import DryPipeError
    from drypipe.scheduler import arrays
    inst, commands = tmp_path / "inst", []
    with _hand_array(inst, _fake_slurm(commands, sbatch_ok=False)) as orch:
        with pytest.raises(DryPipeError, match="Invalid account"):
            arrays.submit(orch, "big")
    rows = db(inst)
    assert {r["state"] for r in rows.values()} == {"ready"}
    assert all(r["job_id"] is None for r in rows.values())
    assert_state_files_match_db(inst)
    with _hand_array_again(inst, _fake_slurm(commands)) as orch:
        assert len(arrays.submit(orch, "big")) == 6  # the same children, submitted once fixed
    assert {r["job_id"] for r in db(inst).values()} == {f"555_{i}" for i in range(6)}


def _hand_array_again(inst, runner):
    from drypipe.scheduler.orchestrator import Orchestrator
    orch = Orchestrator(str(inst))
    orch.slurm = SlurmExecutor(orch.instance_dir, sleep_schedule=(0,), runner=runner)
    return orch


class _Died(BaseException):
    """The orchestrator dying (kill -9) right after sbatch returned, before recording job ids."""


def test_a_hand_array_submitted_just_before_a_crash_is_found_again_not_resubmitted(tmp_path, monkeypatch):
    from drypipe.scheduler import arrays
    from drypipe.scheduler.orchestrator import Orchestrator
    inst, commands = tmp_path / "inst", []
    orch = _hand_array(inst, _fake_slurm(commands))
    monkeypatch.setattr(orch, "set_job_id", lambda *a: (_ for _ in ()).throw(_Died()))
    with pytest.raises(_Died):
        arrays.submit(orch, "big")
    orch.lock.release()  # the process is gone: the kernel drops its lock
    assert {r["state"] for r in db(inst).values()} == {"launched"}
    assert commands.count("sbatch") == 1
    # the next orchestrator finds the jobs through the parent's job-id file: no second sbatch
    with Orchestrator(str(inst)) as orch2:
        rows = db(inst)
        assert {r["job_id"] for r in rows.values()} == {f"555_{i}" for i in range(6)}
        assert set(orch2.slurm.jobs) == {f"a-{i}" for i in range(6)}
    assert commands.count("sbatch") == 1
