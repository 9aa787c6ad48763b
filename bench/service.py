"""The `service` workload of bench/run.py: `drypipe service` against `drypipe run`.

    drain     N instances of bench.pipelines:service_5 (5 tasks: a -> (b, c) -> d -> e) dropped at
              once (each folder made with X/.drypipe/state.ready before the service starts), then
              `drypipe service --sleep-schedule 0,0.1,0.2` timed from its start until every marker
              says state.completed (then SIGTERM: it must exit 0). Against it, the baseline:
              `drypipe run -q` on N identical folders one after the other, timed in total.
              Judged at the nominal size: speed-up = baseline / drain > 1.
    scan      the service's idle scan, in process: drypipe.service.markers.scan(instances_dir,
              "ready", skip) over SCAN_N finished instances (folders with only
              .drypipe/state.completed, plus a few real completed instances copied from a drain);
              the median of many scans. Judged at the nominal size: < 50 ms.
    idle CPU  `drypipe service --sleep-schedule 0.1` on those finished instances: its CPU time
              (utime + stime of /proc/<pid>/stat) over a few seconds once started. Reported
              (% CPU, and CPU per scan loop), not judged.

Sizes: N from DRYPIPE_BENCH_SERVICE_N (200, 20 with --quick), SCAN_N from
DRYPIPE_BENCH_SERVICE_SCAN_N (1000, 100 with --quick). Both services run with the defaults of
-j and DRYPIPE_SERVICE_MAX_INSTANCES (those variables are removed from their environment).

This module imports nothing of bench/run.py (run as a script, run.py is __main__, and an import
of bench.run would make a second copy of it): run.py passes its BenchError in."""
from __future__ import annotations

import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GENERATOR = "bench.pipelines:service_5"
CONFIG = "bench.pipelines:service_config"  # service_5 for every folder of HOME/instances
INSTANCES = "instances"  # service_config's instances dir, relative to the service home
NOMINAL_SCAN_N, QUICK_SCAN_N = 1000, 100
DRAIN_SCHEDULE = "0,0.1,0.2"
IDLE_SCHEDULE_S = 0.1
IDLE_SECONDS, QUICK_IDLE_SECONDS = 3.0, 1.5
SCAN_REPEATS = 200
SCAN_LIMIT_S = 0.050
REAL_COMPLETED = 5  # real completed instances among the scanned ones
TARGET = "speed-up > 1x, scan < 50 ms"
# the service's own knobs: measured at their defaults, whatever the caller's environment says
SERVICE_ENV = ("DRYPIPE_SERVICE_SLEEP_SCHEDULE", "DRYPIPE_SERVICE_JOBS", "DRYPIPE_SERVICE_MAX_INSTANCES",
               "DRYPIPE_SERVICE_CONFIG_GENERATOR", "DRYPIPE_LOGGING_CONF")


class _Error(Exception):
    """Raised when no error class was passed in (use from tests or a shell)."""


def drypipe_argv() -> list[str]:
    """The drypipe CLI as the user runs it: the script next to this Python (like run.py)."""
    script = Path(sys.executable).parent / "drypipe"
    return [str(script)] if script.exists() else [sys.executable, "-m", "drypipe"]


def child_env() -> dict:
    env = dict(os.environ)
    for k in SERVICE_ENV:
        env.pop(k, None)
    return env


def scan_size(quick: bool) -> int:
    env = os.environ.get("DRYPIPE_BENCH_SERVICE_SCAN_N")
    return int(env) if env else (QUICK_SCAN_N if quick else NOMINAL_SCAN_N)


def make_instances(instances_dir: str, n: int, state: str = "ready") -> list[str]:
    """n folders i-0000 ... each with only X/.drypipe/state.<state> (the marker written last)."""
    dirs = []
    for i in range(n):
        d = os.path.join(instances_dir, f"i-{i:04d}")
        os.makedirs(os.path.join(d, ".drypipe"))
        Path(d, ".drypipe", f"state.{state}").touch()
        dirs.append(d)
    return dirs


def marker(d: str, state: str) -> str:
    return os.path.join(d, ".drypipe", f"state.{state}")


def check_instance(d: str, error, counts: bool = True) -> None:
    """All 5 tasks of service_5 completed in instance d: their files, and the DB's counts."""
    from bench import pipelines
    for key in pipelines.SERVICE_KEYS:
        path = os.path.join(d, "output", key, "out.txt")
        try:
            text = Path(path).read_text()
        except OSError as e:
            raise error(f"service: {d}: missing output: {e}") from e
        if key == pipelines.SERVICE_KEYS[-1] and text.split() != pipelines.service_expected_output():
            raise error(f"service: {path} is {text.split()}, expected {pipelines.service_expected_output()}")
    if counts:
        from drypipe.service.status import task_counts
        c = task_counts(d)
        if c != {"completed": len(pipelines.SERVICE_KEYS)}:
            raise error(f"service: {d}: task states {c}, expected 5 completed")


def _tail(path: str, limit: int = 2000) -> str:
    try:
        return Path(path).read_text(errors="replace")[-limit:]
    except OSError:
        return ""


# -- drain: the service against drypipe run, instance after instance ---------------------------
def run_baseline(n: int, work: str, error) -> float:
    """`drypipe run -q` on n fresh folders (made like the service's), one after the other."""
    dirs = make_instances(os.path.join(work, INSTANCES), n)
    env = child_env()
    t0 = time.perf_counter()
    for d in dirs:
        res = subprocess.run([*drypipe_argv(), "run", "-q", "--pipeline-instance-dir", d, "--generator", GENERATOR],
                             cwd=REPO, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                             timeout=300)
        if res.returncode != 0:
            raise error(f"service baseline: drypipe run {d} exited {res.returncode}\n--- stdout:\n"
                        f"{res.stdout[-2000:]}\n--- stderr:\n{res.stderr[-2000:]}")
    seconds = time.perf_counter() - t0
    for d in dirs:
        check_instance(d, error)
    return seconds


def start_service(home: str, schedule: str, work: str, name: str) -> tuple[subprocess.Popen, str]:
    err_path = os.path.join(work, f"{name}.err")
    with open(os.path.join(work, f"{name}.out"), "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen([*drypipe_argv(), "service", "--pipeline-instance-dir", home,
                                 "--config-generator", CONFIG, "--sleep-schedule", schedule],
                                cwd=REPO, env=child_env(), stdin=subprocess.DEVNULL, stdout=out, stderr=err)
    return proc, err_path


def stop_service(proc: subprocess.Popen, err_path: str, error, timeout: float = 60.0) -> float:
    """SIGTERM, then the exit (must be 0); the service's peak RSS in MB."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            proc.kill()
            _, status, usage = os.wait4(proc.pid, 0)
            raise error(f"service: still running {timeout:.0f} s after SIGTERM (killed)\n--- stderr:\n"
                        f"{_tail(err_path)}")
        time.sleep(0.02)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise error(f"service: exited {proc.returncode} after SIGTERM, expected 0\n--- stderr:\n{_tail(err_path)}")
    return usage.ru_maxrss / 1024


def run_service_drain(n: int, work: str, error, timeout: float | None = None) -> tuple[float, float, str]:
    """n instances dropped, then `drypipe service` started and timed until every marker says
    completed; (seconds, peak RSS MB, instances dir)."""
    home = os.path.join(work, "home")
    instances_dir = os.path.join(home, INSTANCES)
    pending = set(make_instances(instances_dir, n))
    dirs = sorted(pending)
    timeout = timeout if timeout is not None else 120.0 + 2.0 * n
    t0 = time.perf_counter()
    proc, err_path = start_service(home, DRAIN_SCHEDULE, work, "service")
    try:
        while pending:
            for d in list(pending):
                if os.path.exists(marker(d, "completed")):
                    pending.discard(d)
                elif os.path.exists(marker(d, "failed")):
                    log = _tail(os.path.join(d, ".drypipe", "instance.log"), 1000)
                    raise error(f"service: instance {d} failed:\n{log}\n--- service stderr:\n{_tail(err_path)}")
            if not pending:
                break
            if proc.poll() is not None:
                raise error(f"service: exited {proc.returncode} with {len(pending)} instances not completed\n"
                            f"--- stderr:\n{_tail(err_path)}")
            if time.perf_counter() - t0 > timeout:
                raise error(f"service: {len(pending)} of {n} instances not completed after {timeout:.0f} s\n"
                            f"--- stderr:\n{_tail(err_path)}")
            time.sleep(0.02)
        seconds = time.perf_counter() - t0
    except BaseException:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        raise
    rss = stop_service(proc, err_path, error)
    for d in dirs:
        check_instance(d, error)
    return seconds, rss, instances_dir


# -- idle: the scan of finished instances, and the CPU of an idle service ----------------------
def make_finished_home(work: str, scan_n: int, real: list[str]) -> str:
    """A service home whose instances dir holds scan_n finished instances: copies of the real
    completed ones, the rest folders with only .drypipe/state.completed."""
    home = os.path.join(work, "home")
    instances_dir = os.path.join(home, INSTANCES)
    os.makedirs(instances_dir)
    real = real[:min(REAL_COMPLETED, scan_n)]
    for i, d in enumerate(real):
        shutil.copytree(d, os.path.join(instances_dir, f"real-{i}"), symlinks=True)
    for i in range(scan_n - len(real)):
        d = os.path.join(instances_dir, f"done-{i:04d}", ".drypipe")
        os.makedirs(d)
        Path(d, "state.completed").touch()
    return home


def measure_scan(instances_dir: str, scan_n: int, error, repeats: int = SCAN_REPEATS) -> list[float]:
    """Seconds of each of `repeats` scans as the idle service does them (nothing ready, nothing skipped)."""
    from drypipe.service import markers
    if len(os.listdir(instances_dir)) != scan_n:
        raise error(f"service scan: {instances_dir} holds {len(os.listdir(instances_dir))} folders, not {scan_n}")
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        found = markers.scan(instances_dir, markers.READY, set())
        times.append(time.perf_counter() - t0)
        if found:
            raise error(f"service scan: found {len(found)} ready instances among finished ones")
    if len(markers.scan(instances_dir, markers.COMPLETED, set())) != scan_n:
        raise error(f"service scan: fewer than {scan_n} completed markers seen")
    return times


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc/<pid>/stat."""
    data = Path(f"/proc/{pid}/stat").read_text()
    fields = data[data.rindex(")") + 2:].split()  # after "pid (comm) ": field 3 (state) is fields[0]
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure_idle(home: str, seconds: float, work: str, error) -> dict:
    """`drypipe service --sleep-schedule 0.1` on the finished instances: CPU over `seconds` once it
    is up (service.json written, plus 0.5 s), then SIGTERM (exit 0)."""
    proc, err_path = start_service(home, f"{IDLE_SCHEDULE_S:g}", work, "service-idle")
    info = os.path.join(home, ".drypipe", "service.json")
    try:
        deadline = time.monotonic() + 60
        while not os.path.exists(info):
            if proc.poll() is not None:
                raise error(f"service (idle): exited {proc.returncode} at start-up\n--- stderr:\n{_tail(err_path)}")
            if time.monotonic() > deadline:
                raise error("service (idle): no service.json 60 s after start")
            time.sleep(0.02)
        time.sleep(0.5)  # start-up settled: the first scans done
        c0, t0 = cpu_seconds(proc.pid), time.perf_counter()
        time.sleep(seconds)
        c1, t1 = cpu_seconds(proc.pid), time.perf_counter()
        if proc.poll() is not None:
            raise error(f"service (idle): exited {proc.returncode} while idle\n--- stderr:\n{_tail(err_path)}")
    except BaseException:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        raise
    stop_service(proc, err_path, error)
    if any(not n.startswith(".") and not os.path.exists(marker(os.path.join(home, INSTANCES, n), "completed"))
           for n in os.listdir(os.path.join(home, INSTANCES))):
        raise error("service (idle): a finished instance's marker was moved")
    return {"wall_s": t1 - t0, "cpu_s": c1 - c0, "schedule_s": IDLE_SCHEDULE_S,
            "cpu_percent": 100.0 * (c1 - c0) / (t1 - t0)}


# -- the workload --------------------------------------------------------------------------------
def bench_service(n: int, runs: int, scratch: str, quick: bool = False, nominal: int = 200, error=_Error,
                  log=print) -> dict:
    """`runs` interleaved runs of the baseline and of the drain, each in fresh dirs under scratch
    (deleted by the caller), then the scan and idle-CPU measures once; the result dict."""
    scan_n = scan_size(quick)
    log(f"\n== service (n={n} instances of {GENERATOR}, {runs} run{'s' if runs > 1 else ''}; "
        f"idle scan of {scan_n} finished instances)")
    base_s, drain_s, rss = [], [], []
    drained = None
    for r in range(runs):
        s = run_baseline(n, tempfile.mkdtemp(prefix="service-run-", dir=scratch), error)
        base_s.append(s)
        log(f"   run {r + 1}  drypipe run x {n:<4} {s:8.3f} s")
        s, mb, drained = run_service_drain(n, tempfile.mkdtemp(prefix="service-drain-", dir=scratch), error)
        drain_s.append(s)
        rss.append(mb)
        log(f"   run {r + 1}  service drain     {s:8.3f} s, peak RSS {mb:.0f} MB")
    real = sorted(os.path.join(drained, d) for d in os.listdir(drained))
    work = tempfile.mkdtemp(prefix="service-idle-", dir=scratch)
    home = make_finished_home(work, scan_n, real)
    scans = measure_scan(os.path.join(home, INSTANCES), scan_n, error)
    log(f"   scan of {scan_n} finished instances: median {statistics.median(scans) * 1e3:.2f} ms, "
        f"max {max(scans) * 1e3:.2f} ms ({len(scans)} scans)")
    idle = measure_idle(home, QUICK_IDLE_SECONDS if quick else IDLE_SECONDS, work, error)
    log(f"   idle service (a scan every {IDLE_SCHEDULE_S:g} s): {idle['cpu_s']:.2f} s CPU in "
        f"{idle['wall_s']:.2f} s = {idle['cpu_percent']:.1f} % CPU")
    return summarize(n, runs, scan_n, base_s, drain_s, rss, scans, idle, nominal)


def summarize(n: int, runs: int, scan_n: int, base_s: list[float], drain_s: list[float], rss: list[float],
              scans: list[float], idle: dict, nominal: int = 200) -> dict:
    base, drain = statistics.median(base_s), statistics.median(drain_s)
    speedup = base / drain if drain else None
    scan_median = statistics.median(scans)
    # loops of the idle service: a scan, then a sleep of the schedule's step
    loops = idle["wall_s"] / (idle["schedule_s"] + scan_median)
    judged = n == nominal and scan_n == NOMINAL_SCAN_N
    passed = speedup is not None and speedup > 1.0 and scan_median < SCAN_LIMIT_S
    return {
        "name": "service", "kind": "service", "generator": GENERATOR, "config_generator": CONFIG,
        "n": n, "nominal_n": nominal, "runs": runs,
        "baseline": {"what": f"drypipe run, {n} instances one after the other",
                     "median_s": base, "runs_s": base_s},
        "drain": {"what": f"drypipe service --sleep-schedule {DRAIN_SCHEDULE}, {n} instances dropped at once",
                  "median_s": drain, "runs_s": drain_s, "median_peak_rss_mb": statistics.median(rss),
                  "peak_rss_mb": rss},
        "speedup": speedup,
        "scan": {"finished_instances": scan_n, "nominal_finished_instances": NOMINAL_SCAN_N, "scans": len(scans),
                 "median_s": scan_median, "min_s": min(scans), "max_s": max(scans), "limit_s": SCAN_LIMIT_S},
        "idle": {**idle, "finished_instances": scan_n, "cpu_per_loop_s": idle["cpu_s"] / loops if loops else None},
        "target": TARGET, "judged": judged, "passed": passed if judged else None,
    }


def verdict(r: dict) -> str:
    if not r["judged"]:
        return f"not judged (n != {r['nominal_n']})" if r["n"] != r["nominal_n"] else \
            f"not judged (scan of {r['scan']['finished_instances']} != {NOMINAL_SCAN_N})"
    return "PASS" if r["passed"] else "FAIL"


def format_table(results: list[dict]) -> str:
    """The service workload: drain against sequential runs, scan and idle CPU."""
    rows = [("workload", "instances", "drypipe run each", "service drain", "speed-up", "scan (finished)",
             "idle CPU", "CPU/scan", "target", "result")]
    for r in results:
        if r.get("kind") != "service":
            continue
        sc, idle = r["scan"], r["idle"]
        per_loop = idle.get("cpu_per_loop_s")
        rows.append((r["name"], str(r["n"]), f"{r['baseline']['median_s']:.2f} s",
                     f"{r['drain']['median_s']:.2f} s / {r['drain']['median_peak_rss_mb']:.0f} MB",
                     f"{r['speedup']:.2f}x" if r["speedup"] else "-",
                     f"{sc['median_s'] * 1e3:.2f} ms ({sc['finished_instances']})",
                     f"{idle['cpu_percent']:.1f} % (every {idle['schedule_s']:g} s)",
                     f"{per_loop * 1e3:.1f} ms" if per_loop is not None else "-", r["target"], verdict(r)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    left = (0, len(rows[0]) - 2, len(rows[0]) - 1)
    lines = ["  ".join(c.ljust(wd) if i in left else c.rjust(wd) for i, (c, wd) in
                       enumerate(zip(row, widths))).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * wd for wd in widths))
    title = ("Service (median of the runs: drypipe run on each instance in turn vs drypipe service draining "
             "them dropped at once, with its peak RSS; the scan is the service's idle one, in process)")
    return title + "\n" + "\n".join(lines)
