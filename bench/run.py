"""DryPipe benchmarks, each against a floor measured side by side in the same run.

    python bench/run.py                    # full suite: 3 runs each, medians, exit 1 if a target fails
    python bench/run.py --quick            # small sizes, 1 run: a smoke check, targets not judged
    python bench/run.py --only chain       # one workload (repeatable, or comma separated)
    python bench/run.py --profile DIR      # also write a cProfile of one extra DryPipe run per workload

Workloads (sizes from DRYPIPE_BENCH_{INDEPENDENT,CHAIN,STATIC}_N, see bench/pipelines.py):
  independent  N tasks `echo i > $out`; floor: the same commands from a pool of os.cpu_count() threads
  chain        N dependent tasks, each reading its predecessor's file; floor: the same commands in sequence
  prepare      `drypipe prepare` of a static N-task pipeline; floor: N records + a hash each +
               a topological sort in pure Python (in a child process, like drypipe)

DryPipe is timed as the whole CLI process (start to exit) on a fresh instance dir each run; a
target is judged only at its nominal size. Results also go to bench/results/latest.json."""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import floors  # noqa: E402

DEFAULT_RESULTS = REPO / "bench" / "results" / "latest.json"
CHILD_TIMEOUT_S = 300.0


@dataclass
class Workload:
    name: str
    generator: str  # bench.pipelines:<function>
    size_env: str  # DRYPIPE_BENCH_<size_env>_N
    nominal: int
    quick: int
    target: str  # human readable


WORKLOADS = [
    Workload("independent", "bench.pipelines:independent_1000", "INDEPENDENT", 1000, 20,
             "ratio <= 2.5x"),
    Workload("chain", "bench.pipelines:chain_200", "CHAIN", 200, 5, "ratio <= 3x"),
    Workload("prepare", "bench.pipelines:static_100k", "STATIC", 100_000, 200,
             "wall < 5 s and peak RSS < 500 MB"),
]
BY_NAME = {w.name: w for w in WORKLOADS}


class BenchError(Exception):
    """A run that failed or produced wrong output: its timing would mean nothing."""


@dataclass
class Measure:
    seconds: float
    peak_rss_mb: float | None = None
    extra: dict = field(default_factory=dict)


# -- measuring ---------------------------------------------------------------------------------
def run_child(argv: list[str], env: dict, log_dir: str, name: str,
              timeout: float = CHILD_TIMEOUT_S) -> tuple[Measure, str]:
    """Run argv from the repo root; wall time start to exit and peak RSS (os.wait4) of the child."""
    out_path, err_path = os.path.join(log_dir, f"{name}.out"), os.path.join(log_dir, f"{name}.err")
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        watchdog = threading.Timer(timeout, proc.kill)  # a hung run must not hang the suite
        watchdog.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            watchdog.cancel()
        seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    stdout = Path(out_path).read_text(errors="replace")
    if seconds >= timeout:
        raise BenchError(f"{' '.join(argv)} killed after {timeout:.0f} s")
    if proc.returncode != 0:
        stderr = Path(err_path).read_text(errors="replace")
        raise BenchError(f"{' '.join(argv)} exited {proc.returncode}\n--- stdout:\n{stdout[-2000:]}"
                         f"\n--- stderr:\n{stderr[-2000:]}")
    return Measure(seconds, usage.ru_maxrss / 1024), stdout  # ru_maxrss is in KiB on Linux


def drypipe_argv(profile: str | None = None) -> list[str]:
    if profile:
        return [sys.executable, "-m", "cProfile", "-o", profile, "-m", "drypipe"]
    script = Path(sys.executable).parent / "drypipe"
    return [str(script)] if script.exists() else [sys.executable, "-m", "drypipe"]


def run_drypipe(w: Workload, n: int, work: str, profile: str | None = None) -> Measure:
    instance = os.path.join(work, "instance")
    env = dict(os.environ, **{f"DRYPIPE_BENCH_{w.size_env}_N": str(n)})
    command = ["prepare"] if w.name == "prepare" else ["run", "-q"]
    argv = [*drypipe_argv(profile), *command, "--pipeline-instance-dir", instance, "--generator", w.generator]
    m, stdout = run_child(argv, env, work, "drypipe")
    check_drypipe_output(w, n, instance, stdout)
    return m


def run_floor(w: Workload, n: int, work: str) -> Measure:
    out_dir = os.path.join(work, "floor")
    os.mkdir(out_dir)
    if w.name == "prepare":
        m, stdout = run_child([sys.executable, "-m", "bench.floors", "prepare", str(n)], dict(os.environ),
                              work, "floor")
        report = json.loads(stdout)
        if report["tasks"] != n:
            raise BenchError(f"prepare floor sorted {report['tasks']} tasks, expected {n}")
        m.extra["work_seconds"] = report["work_seconds"]
        return m
    fn = floors.run_independent if w.name == "independent" else floors.run_chain
    t0 = time.perf_counter()
    fn(n, out_dir)
    m = Measure(time.perf_counter() - t0)
    check_floor_output(w, n, out_dir)
    return m


# -- checking that the work was done (outside the timings) -------------------------------------
def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError as e:
        raise BenchError(f"missing output: {e}") from e


def check_drypipe_output(w: Workload, n: int, instance: str, stdout: str) -> None:
    out = lambda key: os.path.join(instance, "output", key, "out.txt")  # noqa: E731
    if w.name == "independent":
        for i in range(n):
            if _read(out(f"t-{i}")).strip() != str(i):
                raise BenchError(f"independent: task t-{i} wrote the wrong output")
    elif w.name == "chain":
        lines = _read(out(f"c-{n - 1}")).split()
        if lines != [str(i) for i in range(n)]:
            raise BenchError(f"chain: last task's file is {lines[:5]}..., expected 0..{n - 1}")
    elif w.name == "prepare":
        if not stdout.startswith(f"{n} tasks"):
            raise BenchError(f"prepare: expected '{n} tasks ...', got {stdout.strip()!r}")


def check_floor_output(w: Workload, n: int, out_dir: str) -> None:
    if w.name == "independent":
        if len(os.listdir(out_dir)) != n:
            raise BenchError("independent floor: missing outputs")
    elif w.name == "chain":
        if _read(os.path.join(out_dir, f"out_{n - 1}.txt")).split() != [str(i) for i in range(n)]:
            raise BenchError("chain floor: wrong output")


# -- one workload ------------------------------------------------------------------------------
def bench_workload(w: Workload, n: int, runs: int, scratch: str, profile_dir: str | None = None,
                   log=print) -> dict:
    """Runs of the floor and of DryPipe, each in a fresh dir under scratch.

    The dirs are deleted by the caller only after the whole suite: on ext4, creating inodes
    right after deleting thousands of them is measurably slower (the allocator skips recently
    deleted inodes), and that would charge one run for the cleanup of the one before."""
    floor_runs: list[Measure] = []
    dp_runs: list[Measure] = []
    log(f"\n== {w.name} (n={n}, {runs} run{'s' if runs > 1 else ''}): {w.generator}")
    for r in range(runs):
        # Floor then DryPipe, interleaved, so both see the same machine load.
        for label, fn, acc in (("floor", run_floor, floor_runs), ("drypipe", run_drypipe, dp_runs)):
            m = fn(w, n, tempfile.mkdtemp(prefix=f"{w.name}-{label}-", dir=scratch))
            acc.append(m)
            rss = f", peak RSS {m.peak_rss_mb:.0f} MB" if m.peak_rss_mb is not None else ""
            log(f"   run {r + 1}  {label:<8} {m.seconds:8.3f} s{rss}")
    profile = None
    if profile_dir:
        os.makedirs(profile_dir, exist_ok=True)
        profile = os.path.abspath(os.path.join(profile_dir, f"{w.name}.prof"))
        m = run_drypipe(w, n, tempfile.mkdtemp(prefix=f"{w.name}-profiled-", dir=scratch), profile=profile)
        log(f"   profiled {m.seconds:8.3f} s -> {profile}  (view: python -m pstats {profile})")
    return summarize(w, n, runs, floor_runs, dp_runs, profile)


def _median(values):
    return statistics.median(values) if values else None


def summarize(w: Workload, n: int, runs: int, floor_runs: list[Measure], dp_runs: list[Measure],
              profile: str | None) -> dict:
    floor_s = _median([m.seconds for m in floor_runs])
    dp_s = _median([m.seconds for m in dp_runs])
    dp_rss = _median([m.peak_rss_mb for m in dp_runs if m.peak_rss_mb is not None])
    floor_rss = _median([m.peak_rss_mb for m in floor_runs if m.peak_rss_mb is not None])
    ratio = dp_s / floor_s if floor_s else None
    judged = n == w.nominal
    if w.name == "prepare":
        passed = dp_s < 5.0 and dp_rss is not None and dp_rss < 500.0
    elif w.name == "independent":
        passed = ratio is not None and ratio <= 2.5
    else:
        passed = ratio is not None and ratio <= 3.0
    result = {
        "name": w.name, "generator": w.generator, "n": n, "nominal_n": w.nominal, "runs": runs,
        "floor": {"median_s": floor_s, "runs_s": [m.seconds for m in floor_runs]},
        "drypipe": {"median_s": dp_s, "runs_s": [m.seconds for m in dp_runs],
                    "median_peak_rss_mb": dp_rss, "peak_rss_mb": [m.peak_rss_mb for m in dp_runs]},
        "ratio": ratio, "target": w.target, "judged": judged, "passed": passed if judged else None,
    }
    if floor_rss is not None:
        result["floor"]["median_peak_rss_mb"] = floor_rss
    work_s = [m.extra["work_seconds"] for m in floor_runs if "work_seconds" in m.extra]
    if work_s:
        result["floor"]["median_work_s"] = _median(work_s)  # without interpreter start and exit
    if profile:
        result["drypipe"]["profile"] = profile
    return result


# -- report ------------------------------------------------------------------------------------
def verdict(r: dict) -> str:
    if not r["judged"]:
        return f"not judged (n != {r['nominal_n']})"
    return "PASS" if r["passed"] else "FAIL"


def format_table(results: list[dict]) -> str:
    def secs(s, rss=None):
        return f"{s:.3f} s" + (f" / {rss:.0f} MB" if rss is not None else "")
    rows = [("workload", "n", "floor median", "drypipe median", "ratio", "target", "result")]
    for r in results:
        rows.append((r["name"], str(r["n"]),
                     secs(r["floor"]["median_s"], r["floor"].get("median_peak_rss_mb")),
                     secs(r["drypipe"]["median_s"],
                          r["drypipe"]["median_peak_rss_mb"] if r["name"] == "prepare" else None),
                     f"{r['ratio']:.2f}x" if r["ratio"] is not None else "-", r["target"], verdict(r)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(wd) if i in (0, 5, 6) else c.rjust(wd) for i, (c, wd) in
                       enumerate(zip(row, widths))).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * wd for wd in widths))
    return "\n".join(lines)


def machine_info() -> dict:
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "loadavg_at_start": list(os.getloadavg())}


def code_version() -> dict:
    """The commit measured, and whether the work tree differed from it."""
    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    return {"commit": git("rev-parse", "HEAD") or None,
            "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}


# -- main --------------------------------------------------------------------------------------
def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--quick", action="store_true", help="small sizes and 1 run: a smoke check")
    p.add_argument("--only", action="append", metavar="NAME",
                   help=f"run only these workloads ({', '.join(BY_NAME)}); repeatable or comma separated")
    p.add_argument("--runs", type=int, help="runs of each side (default 3, 1 with --quick)")
    p.add_argument("--results", default=str(DEFAULT_RESULTS), help="JSON results file (default: %(default)s)")
    p.add_argument("--profile", metavar="DIR",
                   help="cProfile one extra DryPipe run of each workload into DIR")
    p.add_argument("--work-dir", metavar="DIR", help="where instance dirs are made (default: the system temp "
                   "dir); they are deleted at the end")
    args = p.parse_args(argv)
    names = [n.strip() for o in (args.only or []) for n in o.split(",") if n.strip()]
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        p.error(f"unknown workload(s) {', '.join(unknown)}; choose from {', '.join(BY_NAME)}")
    args.workloads = [BY_NAME[n] for n in names] if names else WORKLOADS
    if args.runs is None:
        args.runs = 1 if args.quick else 3
    if args.runs < 1:
        p.error("--runs must be at least 1")
    return args


def size_of(w: Workload, quick: bool) -> int:
    env = os.environ.get(f"DRYPIPE_BENCH_{w.size_env}_N")
    return int(env) if env else (w.quick if quick else w.nominal)


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    started, started_at = time.perf_counter(), time.strftime("%Y-%m-%dT%H:%M:%S%z")
    info = machine_info()
    print(f"DryPipe benchmarks: {info['cpus']} CPUs, Python {info['python']}, "
          f"load average {info['loadavg_at_start'][0]:.2f}" + (" [--quick]" if args.quick else ""))
    results, errors = [], []
    scratch = tempfile.mkdtemp(prefix="drypipe-bench-", dir=args.work_dir)
    info["work_dir"] = scratch
    try:
        for w in args.workloads:
            try:
                results.append(bench_workload(w, size_of(w, args.quick), args.runs, scratch, args.profile))
            except BenchError as e:
                errors.append({"name": w.name, "error": str(e)})
                print(f"   ERROR: {e}", file=sys.stderr)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    elapsed = time.perf_counter() - started
    print()
    if results:
        print(format_table(results))
    for e in errors:
        print(f"{e['name']}: ERROR (see above)")
    failed = [r["name"] for r in results if r["judged"] and not r["passed"]]
    ok = not errors and not failed
    report = {"ok": ok, "quick": args.quick, "runs": args.runs, "elapsed_s": elapsed,
              "started_at": started_at, "code": code_version(), "machine": info,
              "workloads": results, "errors": errors}
    out = Path(args.results)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    if not ok:
        status = "FAILED: " + ", ".join(failed + [e["name"] for e in errors])
    elif any(r["judged"] for r in results):
        status = "all judged targets met"
    else:
        status = "completed; no target judged (sizes differ from the nominal ones)"
    print(f"\n{status} ({elapsed:.0f} s; results in {out})")
    if errors:
        return 2
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
