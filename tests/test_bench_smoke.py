"""The benchmark suite (bench/run.py) still runs end to end, on tiny sizes.

No timing is asserted here: timings belong to `make bench`, which compares DryPipe with a
floor measured side by side. These tests only keep the bench code from rotting."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO

sys.path.insert(0, str(REPO))
from bench import floors, pipelines, run  # noqa: E402

TINY = {"DRYPIPE_BENCH_INDEPENDENT_N": "20", "DRYPIPE_BENCH_CHAIN_N": "5", "DRYPIPE_BENCH_STATIC_N": "200"}


def test_quick_run_reports_numbers_for_every_workload(tmp_path):
    results = tmp_path / "latest.json"
    env = dict(os.environ, **TINY)
    proc = subprocess.run([sys.executable, "bench/run.py", "--quick", "--results", str(results),
                           "--work-dir", str(tmp_path)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    report = json.loads(results.read_text())
    assert report["quick"] is True and report["errors"] == []
    by_name = {w["name"]: w for w in report["workloads"]}
    assert sorted(by_name) == ["chain", "independent", "prepare"]
    assert {name: w["n"] for name, w in by_name.items()} == {"independent": 20, "chain": 5, "prepare": 200}
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
    assert [w.name for w in run.parse_args(["--only", "chain,prepare"]).workloads] == ["chain", "prepare"]
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
    ok = run.summarize(w, 1000, 3, measures(1, 1, 1), measures(2, 2.5, 9), None)
    assert ok["ratio"] == 2.5 and ok["judged"] and ok["passed"] is True
    slow = run.summarize(w, 1000, 3, measures(1, 1, 1), measures(3, 3, 3), None)
    assert slow["passed"] is False
    small = run.summarize(w, 10, 1, measures(1), measures(30), None)
    assert small["judged"] is False and small["passed"] is None
    p = run.BY_NAME["prepare"]
    assert run.summarize(p, 100_000, 1, measures(1, rss=100), measures(4.9, rss=499), None)["passed"] is True
    assert run.summarize(p, 100_000, 1, measures(1, rss=100), measures(4.9, rss=501), None)["passed"] is False
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


def test_a_hung_child_is_killed_and_reported(tmp_path):
    with pytest.raises(run.BenchError, match="killed after"):
        run.run_child(["sleep", "30"], dict(os.environ), str(tmp_path), "hung", timeout=0.3)
