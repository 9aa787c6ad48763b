"""The benchmark suite (bench/run.py) still runs end to end, on tiny sizes.

No timing is asserted here: timings belong to `make bench`, which compares DryPipe with a
floor measured side by side. These tests only keep the bench code from rotting. The `slurm`
workload runs (30 tasks) only when the Slurm cluster of scripts/services-up.sh is up, the
`remote` one (20 tasks) only when its sshd is up."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

from conftest import REPO, skip_or_fail_without_service

sys.path.insert(0, str(REPO))
from bench import floors, pipelines, run, setup_info  # noqa: E402

TINY = {"DRYPIPE_BENCH_INDEPENDENT_N": "20", "DRYPIPE_BENCH_CHAIN_N": "5", "DRYPIPE_BENCH_STATIC_N": "200",
        "DRYPIPE_BENCH_RUN20K_N": "30"}
FLOOR_WORKLOADS = "independent,chain,run20k,prepare"  # the slurm one has tests of its own below
FOLLOW_UPS = ["list-states --state failed", "prepare again", "run again", "status"]


def run_bench(tmp_path, *args, env=None):
    results = tmp_path / "latest.json"
    proc = subprocess.run([sys.executable, "bench/run.py", "--quick", "--results", str(results),
                           "--work-dir", str(tmp_path), *args],
                          cwd=REPO, env=env or dict(os.environ), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc, json.loads(results.read_text()), results


def test_quick_run_reports_numbers_for_every_floor_workload(tmp_path):
    proc, report, results = run_bench(tmp_path, "--only", FLOOR_WORKLOADS, env=dict(os.environ, **TINY))
    assert report["quick"] is True and report["errors"] == [] and report["skipped"] == []
    follow_ups = {w["name"]: w for w in report["workloads"] if w["kind"] == "follow-up"}
    by_name = {w["name"]: w for w in report["workloads"] if w["kind"] != "follow-up"}
    assert sorted(by_name) == ["chain", "independent", "prepare", "run20k"]
    assert {name: w["n"] for name, w in by_name.items()} == {"independent": 20, "chain": 5, "prepare": 200,
                                                             "run20k": 30}
    # the no-op commands on the instances left: prepare again, list-states, status; run again
    assert sorted(follow_ups) == FOLLOW_UPS
    assert follow_ups["run again"]["after"] == "run20k" and follow_ups["status"]["after"] == "prepare"
    for w in follow_ups.values():
        assert w["drypipe"]["median_s"] > 0 and w["judged"] is False and w["target"].startswith("wall <= ")
    # what was measured: this venv's DryPipe (the editable install of the tests), progress on
    conf = report["machine"]["configuration"]
    assert conf["install"] in ("editable", "wheel") and conf["builtins"] is False and conf["progress"] == "tty"
    assert all(w["configuration"] == conf["label"] for w in report["workloads"])
    assert "no builtins, progress on" in proc.stdout
    for w in by_name.values():
        assert w["runs"] == 1 and len(w["floor"]["runs_s"]) == 1 and len(w["drypipe"]["runs_s"]) == 1
        assert w["floor"]["median_s"] > 0 and w["drypipe"]["median_s"] > 0 and w["ratio"] > 0
        assert w["drypipe"]["median_peak_rss_mb"] > 0
        assert w["judged"] is False and w["passed"] is None  # not the nominal sizes
    assert by_name["prepare"]["floor"]["median_peak_rss_mb"] > 0

    for name in by_name:
        assert name in proc.stdout
    assert "not judged" in proc.stdout
    assert list(tmp_path.iterdir()) == [results]  # instance dirs cleaned up


def test_only_selects_workloads_and_rejects_unknown_names(capsys):
    assert [w.name for w in run.parse_args([]).workloads] == ["independent", "chain", "run20k", "prepare",
                                                              "slurm", "remote", "service"]
    assert [w.name for w in run.parse_args(["--only", "chain,prepare"]).workloads] == ["chain", "prepare"]
    assert [w.name for w in run.parse_args(["--only", "slurm"]).workloads] == ["slurm"]
    assert [w.name for w in run.parse_args(["--only", "remote"]).workloads] == ["remote"]
    assert [w.name for w in run.parse_args(["--only", "prepare", "--only", "chain"]).workloads] == \
        ["prepare", "chain"]
    with pytest.raises(SystemExit):
        run.parse_args(["--only", "nope"])
    assert "unknown workload(s) nope" in capsys.readouterr().err


def test_a_failing_drypipe_run_is_an_error_not_a_timing(tmp_path):
    w = run.Workload("chain", "bench.pipelines:no_such_generator", "CHAIN", 200, 5, "")
    with pytest.raises(run.BenchError, match="exited 2"):
        run.run_drypipe(w, 3, str(tmp_path))


def test_judging_only_at_nominal_size():
    def measures(*seconds, rss=None):
        return [run.Measure(s, rss) for s in seconds]

    w = run.BY_NAME["independent"]
    ok = run.summarize(w, 1000, 3, measures(1, 1, 1), measures(1.5, 2, 9), None)
    assert ok["ratio"] == 2.0 and ok["judged"] and ok["passed"] is True
    slow = run.summarize(w, 1000, 3, measures(1, 1, 1), measures(3, 3, 3), None)
    assert slow["passed"] is False
    small = run.summarize(w, 10, 1, measures(1), measures(30), None)
    assert small["judged"] is False and small["passed"] is None
    p = run.BY_NAME["prepare"]
    assert run.summarize(p, 100_000, 1, measures(1, rss=100), measures(2.9, rss=299), None)["passed"] is True
    assert run.summarize(p, 100_000, 1, measures(1, rss=100), measures(2.9, rss=301), None)["passed"] is False
    assert run.summarize(p, 100_000, 1, measures(1, rss=100), measures(3.1, rss=200), None)["passed"] is False
    r20 = run.BY_NAME["run20k"]
    assert run.summarize(r20, 20_000, 1, measures(10), measures(24), None)["passed"] is True
    assert run.summarize(r20, 20_000, 1, measures(10), measures(26), None)["passed"] is False
    again = measures(30)
    again[0].extra["run again"] = 2.5
    [follow] = run.summarize(r20, 20_000, 1, measures(20), again, None)["follow_ups"]
    assert (follow["name"], follow["passed"], follow["target"]) == ("run again", False, "wall <= 2 s")
    assert "FAIL" in run.format_table([slow]) and "not judged" in run.format_table([small])


def test_prepare_floor_sorts_the_static_dag_topologically():
    order = floors.prepare_static(2500)
    assert sorted(order) == sorted(f"s-{i}" for i in range(2500))
    pos = {k: i for i, k in enumerate(order)}
    for i in range(2500):
        up = pipelines.static_upstream(i)
        if up is not None:
            assert pos[f"s-{up}"] < pos[f"s-{i}"]


def test_floors_run_the_pipelines_commands(tmp_path):
    (tmp_path / "i").mkdir()
    (tmp_path / "c").mkdir()
    floors.run_independent(5, str(tmp_path / "i"))
    floors.run_chain(4, str(tmp_path / "c"))
    assert (tmp_path / "i" / "out_3.txt").read_text() == "3\n"
    assert (tmp_path / "c" / "out_3.txt").read_text().split() == ["0", "1", "2", "3"]


def test_drypipe_runs_with_its_stderr_on_a_terminal(tmp_path):
    code = "import sys; print(sys.stderr.isatty(), file=sys.stderr); print(sys.stdout.isatty())"
    m, out = run.run_child([sys.executable, "-c", code], dict(os.environ), str(tmp_path), "tty", tty=True)
    assert (out, (tmp_path / "tty.err").read_text().strip()) == ("False\n", "True")
    run.run_child([sys.executable, "-c", code], dict(os.environ), str(tmp_path), "plain")
    assert (tmp_path / "plain.err").read_text() == "False\n"


def test_the_configuration_names_the_install():
    conf = setup_info.configuration(sys.executable)
    assert conf["install"] == "editable" and conf["builtins"] is False  # the tests' own venv (make install)
    assert setup_info.describe(dict(conf, install="wheel", fresh_venv=True)) == \
        "wheel in a fresh venv, no builtins, progress on"


def test_a_hung_child_is_killed_and_reported(tmp_path):
    with pytest.raises(run.BenchError, match="killed after"):
        run.run_child(["sleep", "30"], dict(os.environ), str(tmp_path), "hung", timeout=0.3)


# ---------------------------------------------------------------- the slurm workload


def no_slurm_env(tmp_path) -> dict[str, str]:
    """An env in which the bench finds no Slurm cluster."""
    empty = tmp_path / "no-services"
    empty.mkdir()
    env = dict(os.environ, DRYPIPE_TEST_SERVICES=str(empty))
    env.pop("SLURM_CONF", None)
    return env


def test_slurm_workload_is_skipped_without_a_cluster(tmp_path):
    proc, report, results = run_bench(tmp_path, "--only", "slurm", env=no_slurm_env(tmp_path))
    assert "skipped: no Slurm cluster (run scripts/services-up.sh as root)" in proc.stdout
    assert report["ok"] is True and report["workloads"] == [] and report["errors"] == []
    assert report["skipped"] == [{"name": "slurm", "reason": run.NO_SLURM}]
    assert [p.name for p in tmp_path.iterdir() if p != results] == ["no-services"]


@pytest.mark.slurm
def test_quick_slurm_run_counts_the_slurm_commands(tmp_path):
    client_env = run.slurm_client_env()
    if client_env is None:
        skip_or_fail_without_service("no Slurm cluster: start it with scripts/services-up.sh (as root)")
    max_array = run.slurm_max_array_size(dict(os.environ, **client_env), run.real_slurm_commands()["scontrol"])
    env = dict(os.environ)
    env.pop("DRYPIPE_BENCH_SLURM_N", None)
    proc, report, results = run_bench(tmp_path, "--only", "slurm", env=env)

    assert report["ok"] is True and report["errors"] == [] and report["skipped"] == []
    [w] = report["workloads"]
    assert (w["name"], w["kind"], w["n"], w["runs"]) == ("slurm", "slurm", 30, 1)
    assert w["judged"] is False and w["passed"] is None  # not the nominal size
    calls = {c: v["runs"][0] for c, v in w["calls"].items()}
    assert calls["sbatch"] == math.ceil(30 / max_array) == w["sbatch_limit"][0]  # job arrays
    assert 1 <= calls["squeue"] < 30  # one squeue per polling round, not per task
    # sacct: asked once (no accounting on the test cluster: never again), never once per job
    assert calls["scontrol"] <= 1 and calls["sacct"] <= 1 and calls["scancel"] == 0
    assert w["max_array_size"] == [max_array]
    d = w["drypipe"]
    assert d["median_s"] > 0 and 0 < d["first_sbatch_s"][0] < d["last_output_s"][0] <= d["median_s"]
    assert "Slurm (real cluster" in proc.stdout and "not judged" in proc.stdout
    assert list(tmp_path.iterdir()) == [results]  # instance dirs cleaned up


def test_shims_log_each_call_and_run_the_real_command(tmp_path):
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    run.write_shims(str(bin_dir), str(log), {"sbatch": "/bin/echo", "squeue": "/bin/false"})
    out = subprocess.run([str(bin_dir / "sbatch"), "--parsable", "--array=0-9%2", "a b.sh"],
                         capture_output=True, text=True)
    assert (out.returncode, out.stdout) == (0, "--parsable --array=0-9%2 a b.sh\n")
    assert subprocess.run([str(bin_dir / "squeue")]).returncode == 1  # the real exit status
    calls = run.read_calls(str(log))
    assert [(c, a) for _, c, a in calls] == [("sbatch", "--parsable --array=0-9%2 a b.sh"), ("squeue", "")]
    assert all(t > 1e9 for t, _, _ in calls)  # epoch times
    assert run.jobs_submitted([calls[0][2], "--parsable x.sh", "--array 0,3-5,10-16:3 y.sh"]) == 10 + 1 + 7


def test_slurm_client_env_from_slurm_conf_or_the_services_env_file(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_CONF", "/etc/slurm/slurm.conf")
    assert run.slurm_client_env() == {}
    monkeypatch.delenv("SLURM_CONF")
    monkeypatch.setenv("DRYPIPE_TEST_SERVICES", str(tmp_path))
    assert run.slurm_client_env() is None
    (tmp_path / "slurm.env").write_text("export SLURM_CONF=/var/tmp/x/slurm.conf\n")
    assert run.slurm_client_env() == {"SLURM_CONF": "/var/tmp/x/slurm.conf"}


def test_slurm_judging_counts_sbatch_per_max_array_size_and_squeue():
    def measure(sbatch, squeue, max_array=1001, seconds=60.0):
        return run.Measure(seconds, 50.0, {"max_array_size": max_array, "first_sbatch_s": 0.5,
                                           "last_output_s": seconds - 1,
                                           "calls": {"sbatch": sbatch, "squeue": squeue, "sacct": 0,
                                                     "scontrol": 1, "scancel": 0}})
    w = run.BY_NAME["slurm"]
    ok = run.summarize_slurm(w, 1000, 3, [measure(1, 40), measure(1, 99, seconds=70), measure(1, 50)], None)
    assert ok["judged"] and ok["passed"] is True and ok["drypipe"]["median_s"] == 60.0
    assert ok["calls"]["squeue"] == {"median": 50, "runs": [40, 99, 50]}
    assert run.summarize_slurm(w, 1000, 1, [measure(10, 40, max_array=100)], None)["passed"] is True
    assert run.summarize_slurm(w, 1000, 1, [measure(2, 40)], None)["passed"] is False
    too_many_polls = run.summarize_slurm(w, 1000, 3, [measure(1, 40), measure(1, 100), measure(1, 40)], None)
    assert too_many_polls["passed"] is False
    small = run.summarize_slurm(w, 30, 1, [measure(1, 3)], None)
    assert small["judged"] is False and small["passed"] is None
    table = run.format_slurm_table([ok, too_many_polls, small])
    assert "PASS" in table and "FAIL" in table and "not judged" in table and "50 (40-99)" in table


# ---------------------------------------------------------------- the remote workload


def test_remote_workload_is_skipped_without_the_sshd(tmp_path):
    proc, report, results = run_bench(tmp_path, "--only", "remote", env=no_slurm_env(tmp_path))
    assert "skipped: no sshd for the tests (run scripts/services-up.sh as root)" in proc.stdout
    assert report["ok"] is True and report["workloads"] == [] and report["errors"] == []
    assert report["skipped"] == [{"name": "remote", "reason": run.NO_SSHD}]


@pytest.mark.ssh
def test_quick_remote_run_reports_wall_time_and_ssh_traffic(tmp_path):
    ssh = run.ssh_client_env()
    if ssh is None:
        skip_or_fail_without_service("no sshd for the tests: start it with scripts/services-up.sh (as root)")
    env = dict(os.environ)
    env.pop("DRYPIPE_BENCH_REMOTE_N", None)
    proc, report, results = run_bench(tmp_path, "--only", "remote", env=env)

    assert report["ok"] is True and report["errors"] == [] and report["skipped"] == []
    [w] = report["workloads"]
    assert (w["name"], w["kind"], w["n"], w["runs"]) == ("remote", "remote", 20, 1)
    assert w["judged"] is False and w["passed"] is None  # not the nominal size
    assert w["host"] == f"{ssh['DRYPIPE_TEST_SSH_USER']}@{ssh['DRYPIPE_TEST_SSH_HOST']}:{ssh['DRYPIPE_TEST_SSH_PORT']}"
    counts = {c: v["runs"][0] for c, v in w["counts"].items()}
    assert counts["connections"] == 1  # one connection, reused for the whole run
    assert 1 <= counts["rsync"] < 20 and 2 <= counts["ssh_commands"] < 20  # batched, not per task
    assert w["drypipe"]["median_s"] > 0
    assert "Remote over SSH" in proc.stdout and "connections opened" in proc.stdout
    assert list(tmp_path.iterdir()) == [results]  # instance dirs cleaned up
    assert "drypipe-bench-" not in run.remote_shell(ssh, "ls -a ~")  # and the remote base dirs


def test_remote_counts_parsed_from_drypipes_log_and_judged():
    err = ("2026-01-01 INFO drypipe.orchestrator: task t-1: completed\n"
           "2026-01-01 INFO drypipe.remote: remote hosts: 1 connections opened, 2 rsync calls, 3 ssh commands\n")
    assert run.parse_remote_counts(err) == {"connections": 1, "rsync": 2, "ssh_commands": 3}
    with pytest.raises(run.BenchError, match="logged no 'remote hosts"):
        run.parse_remote_counts("drypipe: all 200 tasks completed\n")

    def measure(connections, rsync=2, ssh_commands=3, seconds=4.0):
        return run.Measure(seconds, 60.0, {"connections": connections, "rsync": rsync, "ssh_commands": ssh_commands})
    w = run.BY_NAME["remote"]
    ok = run.summarize_remote(w, 200, 3, [measure(1), measure(1, 4, seconds=5.0), measure(1)], None, "u@h:22")
    assert ok["judged"] and ok["passed"] is True and ok["drypipe"]["median_s"] == 4.0
    assert ok["counts"]["rsync"] == {"median": 2, "runs": [2, 4, 2]}
    reconnected = run.summarize_remote(w, 200, 1, [measure(2)], None)
    assert reconnected["passed"] is False
    small = run.summarize_remote(w, 20, 1, [measure(1)], None)
    assert small["judged"] is False and small["passed"] is None
    table = run.format_remote_table([ok, reconnected, small])
    assert "PASS" in table and "FAIL" in table and "not judged" in table and "2 (2-4)" in table


# ---------------------------------------------------------------- the service workload


def test_quick_service_run_drains_the_instances_and_reports_the_idle_scan(tmp_path):
    env = dict(os.environ, DRYPIPE_BENCH_SERVICE_N="5", DRYPIPE_BENCH_SERVICE_SCAN_N="50")
    proc, report, results = run_bench(tmp_path, "--only", "service", env=env)
    assert report["ok"] is True and report["errors"] == [] and report["skipped"] == []
    [w] = report["workloads"]
    assert (w["name"], w["kind"], w["n"], w["runs"]) == ("service", "service", 5, 1)
    assert w["judged"] is False and w["passed"] is None  # not the nominal sizes
    assert w["baseline"]["median_s"] > 0 and w["drain"]["median_s"] > 0 and w["speedup"] > 0
    assert w["drain"]["median_peak_rss_mb"] > 0
    assert w["scan"]["finished_instances"] == 50 and 0 < w["scan"]["median_s"] < w["scan"]["limit_s"]
    assert w["idle"]["wall_s"] > 0 and w["idle"]["cpu_s"] >= 0
    assert "Service (median" in proc.stdout and "not judged" in proc.stdout
    assert list(tmp_path.iterdir()) == [results]  # instance dirs cleaned up

    from bench import service
    idle = {"wall_s": 3.0, "cpu_s": 0.1, "schedule_s": 0.1, "cpu_percent": 3.3}
    ok = service.summarize(200, 1, 1000, [100.0], [10.0], [90.0], [0.005, 0.007], idle)
    assert ok["judged"] and ok["passed"] is True and ok["speedup"] == 10.0
    assert service.summarize(200, 1, 1000, [10.0], [11.0], [90.0], [0.005], idle)["passed"] is False
    assert service.summarize(200, 1, 1000, [100.0], [10.0], [90.0], [0.06], idle)["passed"] is False
    assert service.summarize(200, 1, 100, [100.0], [10.0], [90.0], [0.005], idle)["judged"] is False
    assert "PASS" in service.format_table([ok]) and "10.00x" in service.format_table([ok])
