"""Every attempt of every task, with what it used (the `attempt` table, the `attempts` view):
measured by real runs of tasks whose use is known (tests/pipelines/attempts.py), read back
through the view users query with plain SQL and through Instance.attempts()."""
from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, drypipe, service_env, wait_until

GEN = "tests.pipelines.attempts"
MB = 1024 * 1024
RECORDED = REPO / "tests" / "recorded"


def view(instance: Path) -> dict[str, list[dict]]:
    """task key -> its rows of the `attempts` view, in attempt order (plain sqlite3, as a user would)."""
    con = sqlite3.connect(f"file:{instance}/.drypipe/drypipe.db?mode=ro", uri=True)
    con.row_factory = sqlite3.Row
    try:
        out: dict[str, list[dict]] = {}
        for r in con.execute("SELECT * FROM attempts"):
            out.setdefault(r["name"], []).append(dict(r))
        return out
    finally:
        con.close()


def _seconds(word: str) -> float:
    """`times` output: '0m1.234s' -> 1.234"""
    m, s = word.rstrip("s").split("m")
    return int(m) * 60 + float(s)


def can_measure_memory() -> bool:
    """A memory cgroup of its own per attempt: this machine's v1 memory hierarchy is writable."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        if ":memory:" in line:
            d = "/sys/fs/cgroup/memory" + line.split(":memory:", 1)[1]
            return os.access(os.path.join(d.rstrip("/"), "cgroup.procs"), os.W_OK)
    return False


def require_memory_measurement():
    if not can_measure_memory():
        if os.geteuid() == 0 and os.environ.get("DRYPIPE_REQUIRE_SERVICES") == "1":
            pytest.fail("no writable memory cgroup: peak memory cannot be measured here")
        pytest.skip("no writable memory cgroup on this machine: peak memory is not measured")


def test_each_attempt_records_what_it_used(tmp_path):
    inst = tmp_path / "inst"
    res = drypipe("run", "-pid", inst, "--generator", f"{GEN}:measured", cwd=REPO)
    assert res.returncode == 1, res  # `fails` failed
    rows = view(inst)
    assert set(rows) == {"alloc", "sleep", "spin", "fails", "io"} and all(len(v) == 1 for v in rows.values())
    sleep, spin, fails, alloc = rows["sleep"][0], rows["spin"][0], rows["fails"][0], rows["alloc"][0]
    # sleep 1: at least 1000 ms of real time, hardly any CPU
    assert sleep["status"] == "completed" and sleep["exit"] == 0 and sleep["realtime"] >= 1000
    assert sleep["duration"] >= sleep["realtime"] and sleep["cpu_user"] + sleep["cpu_sys"] < 0.5
    assert sleep["host"] == os.uname().nodename and sleep["native_id"].isdigit() and sleep["attempt"] == 1
    # a CPU-bound step: the attempt's CPU is what the step's shell itself counted (`times`), plus
    # at most a little for the launcher; %cpu is that CPU over the attempt's real time
    own = [_seconds(w) for w in (inst / "output" / "spin" / "times.txt").read_text().split()[:2]]
    cpu = spin["cpu_user"] + spin["cpu_sys"]
    assert sum(own) >= 0.2 and sum(own) - 0.02 <= cpu <= sum(own) + 0.2, (own, spin)
    assert spin["%cpu"] == pytest.approx(100 * cpu / (spin["realtime"] / 1000), abs=1.0)
    # the failed attempt: its step's exit status, the step it failed at
    assert fails["status"] == "failed" and fails["exit"] == 7 and fails["step"] == 1
    for r in (sleep, spin, fails, alloc):
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", r["submit"]) and r["complete"] >= r["start"]
        assert r["workdir"] == str(inst / "output" / r["name"])
    assert rows["alloc"][0]["hash"] != rows["sleep"][0]["hash"]
    # I/O of the whole tree: head read 8 MiB of /dev/zero and wrote them to a file, which cat
    # read and wrote to /dev/null: 16 MiB each way, and a little of the launcher's own
    io = rows["io"][0]
    assert 16 * MB <= io["rchar"] <= 18 * MB and 16 * MB <= io["wchar"] <= 18 * MB, io
    assert sleep["rchar"] < MB and sleep["wchar"] < MB
    from drypipe import Instance
    assert [a["name"] for a in Instance(str(inst)).attempts()] == [r["name"] for v in rows.values() for r in v]


def test_a_task_that_allocates_200_mb_reports_its_peak_within_25_percent(tmp_path):
    """By default: the rusage of the launcher's reaped tree (wait4 by the reaper), no cgroup."""
    inst = tmp_path / "inst"
    drypipe("run", "-pid", inst, "--generator", f"{GEN}:measured", cwd=REPO, env={"DRYPIPE_CGROUPS": ""})
    rows = view(inst)
    alloc = rows["alloc"][0]
    assert alloc["peak_rss_source"] == "rusage"  # not a cgroup: none was made
    assert 0.75 * 200 * MB <= alloc["peak_rss"] <= 1.25 * 200 * MB, alloc["peak_rss"] / MB
    assert alloc["cpu_user"] > 0.05 and alloc["wchar"] is not None
    # a task that allocates nothing does not report the 200 MB of its neighbour
    assert rows["sleep"][0]["peak_rss"] < 20 * MB
    # every attempt has a peak, the failed one too
    assert all(r[0]["peak_rss"] and r[0]["peak_rss_source"] == "rusage" for r in rows.values()), rows


def test_with_cgroups_the_peak_of_200_mb_is_the_cgroups(tmp_path):
    """DRYPIPE_CGROUPS=1: a memory cgroup per attempt (its peak sums the whole tree)."""
    require_memory_measurement()
    inst = tmp_path / "inst"
    drypipe("run", "-pid", inst, "--generator", f"{GEN}:measured", cwd=REPO, env={"DRYPIPE_CGROUPS": "1"})
    alloc = view(inst)["alloc"][0]
    assert alloc["peak_rss_source"] == "cgroup"
    assert 0.75 * 200 * MB <= alloc["peak_rss"] <= 1.25 * 200 * MB, alloc["peak_rss"] / MB
    assert view(inst)["sleep"][0]["peak_rss"] < 20 * MB


def test_without_the_reaper_there_is_no_peak_but_the_rest_is_measured(tmp_path):
    inst = tmp_path / "inst"
    drypipe("run", "-pid", inst, "--generator", f"{GEN}:measured", cwd=REPO,
            env={"DRYPIPE_CGROUPS": "", "DRYPIPE_REAPER": "0"})
    rows = view(inst)
    alloc = rows["alloc"][0]
    assert alloc["peak_rss"] is None and alloc["peak_rss_source"] is None
    assert alloc["cpu_user"] > 0.05 and alloc["wchar"] is not None  # CPU and I/O all the same
    assert rows["fails"][0]["exit"] == 7 and rows["sleep"][0]["realtime"] >= 1000


def test_a_retry_is_a_second_attempt_and_both_stay(tmp_path):
    inst = tmp_path / "inst"
    drypipe("run", "-pid", inst, "--generator", f"{GEN}:retried", cwd=REPO, check=False)
    (inst / "fixed").write_text("")
    drypipe("run", "-pid", inst, "--generator", f"{GEN}:retried", "--restart-failed", cwd=REPO, check=True)
    flaky = view(inst)["flaky"]
    assert [(a["attempt"], a["status"], a["exit"]) for a in flaky] == [(1, "failed", 4), (2, "completed", 0)]
    assert flaky[1]["submit_epoch"] > flaky[0]["complete_epoch"]
    assert flaky[0]["hash"] == flaky[1]["hash"]  # the same definition, run by two orchestrators


def test_an_orchestrator_killed_mid_task_leaves_one_attempt_that_the_next_run_closes(tmp_path):
    inst = tmp_path / "inst"
    env = {**os.environ}
    proc = subprocess.Popen([sys.executable, "-m", "drypipe", "run", "-q", "-pid", str(inst), "--generator",
                             f"{GEN}:measured"], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_until(lambda: (inst / ".drypipe" / "sleep" / "drypipe.log").exists() and
               "step-started" in (inst / ".drypipe" / "sleep" / "drypipe.log").read_text(), timeout=60,
               what="task sleep started")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    running = view(inst)["sleep"]
    assert [a["status"] for a in running] == ["running"]
    drypipe("run", "-q", "-pid", inst, "--generator", f"{GEN}:measured", cwd=REPO)
    after = view(inst)["sleep"]
    assert [(a["attempt"], a["status"]) for a in after] == [(1, "completed")]
    assert after[0]["realtime"] >= 1000 and after[0]["host"]


def test_upgrade_drypipe_rebuilds_the_attempts_of_an_instance_made_by_revision_0001(tmp_path):
    """tests/recorded/instance-0001: the DB of a run of its pipeline.py by DryPipe at revision
    0001 (a, b completed; c failed), as that release wrote it."""
    inst = tmp_path / "old"
    (inst / ".drypipe").mkdir(parents=True)
    shutil.copy(RECORDED / "instance-0001" / "drypipe.db", inst / ".drypipe" / "drypipe.db")
    res = drypipe("upgrade-drypipe", "-pid", inst, check=True)
    assert "from revision 0001 to 0003" in res.stdout  # 0002: attempts, 0003: fingerprints
    rows = view(inst)
    assert {k: [(a["attempt"], a["status"]) for a in v] for k, v in rows.items()} == \
        {"a": [(1, "completed")], "b": [(1, "completed")], "c": [(1, "failed")]}
    assert rows["c"][0]["step"] == 0 and rows["c"][0]["realtime"] >= 0
    assert rows["a"][0]["workdir"] == str(inst / "output" / "a")
    # and the instance runs on: its failed task's retry is attempt 2
    shutil.copy(RECORDED / "instance-0001" / "pipeline.py", tmp_path / "rec_pipe.py")
    res = drypipe("run", "-pid", inst, "--generator", "rec_pipe:dag", "--restart-failed", cwd=tmp_path)
    assert [(a["attempt"], a["status"], a["exit"]) for a in view(inst)["c"]] == [(1, "failed", None), (2, "failed", 3)]
    # a and b ran before fingerprints: nothing to compare with, so never out of date
    assert "out of date" not in res.stderr, res.stderr


# -- sacct, on recorded text (the test cluster has no accounting database) ---------------------------

def test_sacct_rows_of_a_job_and_its_steps_are_merged():
    from drypipe.executors.slurm_text import parse_sacct, sacct_argv
    text = (RECORDED / "sacct-parsable2.txt").read_text()
    out = parse_sacct(text)
    assert out["4242_1"] == {"slurm_state": "COMPLETED", "exit": 0, "cpu_user": 61.5, "cpu_sys": 2.25,
                             "req_mem": 4 << 30, "req_time": 1800.0, "req_cpus": 2, "peak_rss": 204800 << 10,
                             "peak_rss_source": "sacct"}
    assert out["4242_2"]["slurm_state"] == "OUT_OF_MEMORY" and out["4242_2"]["exit"] == 0
    assert out["4242_2"]["peak_rss"] == int(1.5 * (1 << 30))
    assert out["4243"]["slurm_state"] == "TIMEOUT" and out["4243"]["req_time"] == 3600.0 + 60
    assert "peak_rss" not in out["4244"]  # no MaxRSS recorded (no JobAcctGather)
    argv = sacct_argv(["4242_1", "4242_2", "4243"])
    assert argv[:3] == ["sacct", "--noheader", "--parsable2"] and "4242_1,4242_2,4243" in argv


def test_slurm_time_and_size_formats():
    from drypipe.executors.slurm_text import parse_duration, parse_size
    from drypipe.scheduler.attempts import requested, slurm_time_seconds
    from drypipe import TaskConf
    assert parse_duration("01:02.500") == 62.5 and parse_duration("1-02:03:04") == 93784
    assert parse_size("204800K") == 204800 * 1024 and parse_size("4Gn") == 4 << 30 and parse_size("") is None
    assert slurm_time_seconds("30") == 1800 and slurm_time_seconds("2-0") == 172800
    conf = TaskConf(executer_type="slurm", sbatch_options=["--mem=4G", "--time=1:00:00", "--cpus-per-task=8"])
    assert requested(conf) == {"req_mem": 4 << 30, "req_time": 3600.0, "req_cpus": 8}


# -- on the Slurm cluster -----------------------------------------------------------------------------

def run_on_slurm(inst: Path, generator: str):
    """`drypipe run` of a pipeline of Slurm tasks on the test cluster; its jobs cancelled after."""
    env = {**service_env("slurm.env", "slurm-up.sh"), "DRYPIPE_SERVICE_SLEEP_SCHEDULE": "0,1,2"}
    try:
        return drypipe("run", "-pid", inst, "--generator", f"{GEN}:{generator}", cwd=REPO, env=env, timeout=300)
    finally:
        from drypipe.executors import slurm as slurm_executor
        subprocess.run(["scancel", f"--name={slurm_executor.job_name(str(inst))}"],
                       env={**os.environ, **env}, capture_output=True, timeout=30)


@pytest.mark.slurm
def test_slurm_attempts_record_use_and_request(tmp_path):
    # the test cluster gives each job a memory cgroup of its own (task/cgroup): its peak is the job's
    inst = tmp_path / "inst"
    res = run_on_slurm(inst, "on_slurm")
    assert res.returncode == 1, res
    rows = view(inst)
    alloc, fails = rows["alloc"][0], rows["fails"][0]
    assert alloc["executer"] == "slurm" and re.match(r"^\d+_\d+$", alloc["native_id"]), alloc
    assert 0.75 * 200 * MB <= alloc["peak_rss"] <= 1.25 * 200 * MB, alloc["peak_rss"] / MB
    assert alloc["peak_rss_source"] == "cgroup"
    assert alloc["req_mem"] == 1 << 30 and alloc["req_time"] == 600.0
    assert fails["status"] == "failed" and fails["exit"] == 5


FAKE_SACCT = r'''#!/usr/bin/env bash
# test double of sacct (the test cluster keeps no accounting): logs its argv, answers in
# sacct's --parsable2 format for every job it is asked about
echo "$*" >> "$SACCT_LOG"
jobs=
while (( $# )); do [[ $1 == --jobs ]] && jobs=$2; shift; done
IFS=, read -ra ids <<< "$jobs"
for id in "${ids[@]}"; do
  echo "$id|COMPLETED|0:0||00:01.000|00:00.750|00:00.250|1Gn|00:10:00|1"
  echo "$id.batch|COMPLETED|0:0|300M|00:01.000|00:00.750|00:00.250|||1"
done
'''


@pytest.mark.slurm
def test_sacct_is_asked_once_for_all_the_jobs_that_ended_in_a_poll(tmp_path):
    env = {**service_env("slurm.env", "slurm-up.sh"), "DRYPIPE_SERVICE_SLEEP_SCHEDULE": "0,1,2",
           "DRYPIPE_CGROUPS": "0"}  # no cgroup of its own: the peak comes from (fake) accounting
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sacct").write_text(FAKE_SACCT)
    (bin_dir / "sacct").chmod(0o755)
    env["PATH"] = f"{bin_dir}:{os.environ['PATH']}"
    env["SACCT_LOG"] = str(tmp_path / "sacct.log")
    inst = tmp_path / "inst"
    try:
        drypipe("run", "-pid", inst, "--generator", f"{GEN}:on_slurm", cwd=REPO, env=env, timeout=300)
    finally:
        from drypipe.executors import slurm as slurm_executor
        subprocess.run(["scancel", f"--name={slurm_executor.job_name(str(inst))}"],
                       env={**os.environ, **env}, capture_output=True, timeout=30)
    calls = (tmp_path / "sacct.log").read_text().splitlines()
    asked = [c.split("--jobs ")[1].split()[0].split(",") for c in calls]
    rows = view(inst)
    ids = sorted(a["native_id"] for v in rows.values() for a in v)
    assert sorted(j for batch in asked for j in batch) == ids  # each job asked about exactly once
    assert 1 <= len(calls) <= 2  # one call per poll that saw jobs end, not one per job
    alloc = rows["alloc"][0]
    assert alloc["peak_rss"] == 300 * MB and alloc["peak_rss_source"] == "sacct"
    assert alloc["slurm_state"] == "COMPLETED" and alloc["cpu_user"] == 0.75
    assert rows["fails"][0]["exit"] == 5  # the launcher's word on its step beats the fake's 0


# -- retries: TaskConf(retries=N) -------------------------------------------------------------------

def test_a_failed_task_is_retried_at_its_failed_step_up_to_n_more_times(tmp_path):
    inst = tmp_path / "inst"
    res = drypipe("run", "-pid", inst, "--generator", f"{GEN}:with_retries", "--until", "cancelled", cwd=REPO,
                  env={"FAILS": "2"}, check=False)
    assert res.returncode == 1, res
    runs = {k: int((inst / f"runs-{k}").read_text()) for k in ("twice", "once", "never")}
    assert runs == {"twice": 3, "once": 2, "never": 1}  # retries=2 completes at its 3rd run
    rows = view(inst)
    assert [(a["attempt"], a["status"], a["step"], a["exit"]) for a in rows["twice"]] == \
        [(1, "failed", 1, 3), (2, "failed", 1, 3), (3, "completed", None, 0)]
    assert [(a["attempt"], a["status"]) for a in rows["once"]] == [(1, "failed"), (2, "failed")]
    assert len(rows["never"]) == 1
    # resumed at the failed step: step 0 of `twice` ran once
    assert (inst / "output" / "twice" / "s0.txt").read_text() == "step0\n"
    listing = drypipe("list-states", "-pid", inst, check=True).stdout
    assert re.search(r"^twice\s+completed\s+3\s", listing, re.M) and re.search(r"^once\s+failed\.0\s+2\s", listing, re.M)
    assert "retry 2 of 2" in res.stderr


def test_a_killed_task_is_never_retried(tmp_path):
    inst = tmp_path / "inst"
    proc = subprocess.Popen([sys.executable, "-m", "drypipe", "run", "-q", "-pid", str(inst), "--generator",
                             f"{GEN}:with_retries"], cwd=REPO, env={**os.environ, "FAILS": "0"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: (inst / "output" / "cancelled" / "started.txt").exists(), timeout=60,
                   what="the task to start")
        subprocess.run([str(inst / ".drypipe" / "cancelled" / "task"), "kill"], check=True, timeout=60)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, err
    assert [(a["attempt"], a["status"]) for a in view(inst)["cancelled"]] == [(1, "killed")]
    assert "retry 1 of" not in err and "cancelled: killed.0" in err


@pytest.mark.slurm
def test_a_slurm_job_out_of_memory_is_retried_with_twice_the_memory_and_completes(tmp_path):
    inst = tmp_path / "inst"
    res = run_on_slurm(inst, "oom_then_retried")
    assert res.returncode == 0, res
    rows = view(inst)["big"]
    assert [(a["attempt"], a["status"], a["slurm_state"], a["req_mem"]) for a in rows] == \
        [(1, "failed", "OUT_OF_MEMORY", 150 * MB), (2, "completed", None, 300 * MB)], rows  # no sacct here
    assert "ran out of memory (OUT_OF_MEMORY)" in res.stderr and "retry 1 of 1" in res.stderr
    trace = drypipe("trace", "-pid", inst, "--format", "json", check=True).stdout
    assert '"slurm_state": "OUT_OF_MEMORY"' in trace


@pytest.mark.parametrize("comm", ["bash", "a) b (c) d", "x)"])
def test_the_runtime_reads_proc_stat_fields_after_any_comm(comm):
    """Launchers read their state, parent and CPU ticks from /proc/<pid>/stat (admission,
    usage line); the comm between the parentheses may itself hold `) `."""
    tail = "S 4242 4242 1 0 -1 4194560 120 0 0 0 7 3 11 5 20 0 1 0 12345 9000000 500"
    line = f"31337 ({comm}) {tail}"
    runtime = REPO / "drypipe" / "runtime" / "task_runner.sh"
    out = subprocess.run(["bash", "-c", '. "$1"; __drypipe_stat_fields "$2"; echo "${__drypipe_f[*]}"',
                          "t", str(runtime), line], capture_output=True, text=True, check=True).stdout
    assert out.split() == tail.split()
