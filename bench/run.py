"""DryPipe benchmarks, each against a floor measured side by side in the same run.

    python bench/run.py                    # full suite: 3 runs each, medians, exit 1 if a target fails
    python bench/run.py --quick            # small sizes, 1 run: a smoke check, targets not judged
    python bench/run.py --only chain       # one workload (repeatable, or comma separated)
    python bench/run.py --profile DIR      # also write a cProfile of one extra DryPipe run per workload

Workloads (sizes from DRYPIPE_BENCH_{INDEPENDENT,CHAIN,STATIC,SLURM,REMOTE,SERVICE}_N, see bench/pipelines.py):
  independent  N tasks `echo i > $out`; floor: the same commands from a pool of os.cpu_count() threads
  chain        N dependent tasks, each reading its predecessor's file; floor: the same commands in sequence
  run20k       independent's tasks, 20,000 of them (a run at scale); then `drypipe run` again on the
               finished instance (nothing to do: judged <= 2 s)
  prepare      `drypipe prepare` of a static N-task pipeline; floor: N records + a hash each +
               a topological sort in pure Python (in a child process, like drypipe); then, on the
               prepared instance, `prepare` again (<= 2 s), `list-states --state failed` and
               `status` (<= 1 s each)
  slurm        N independent tasks `echo i > $out`, each a job on the real Slurm cluster (1000,
               30 with --quick). No floor: the cluster's scheduling dominates the wall time, which
               is reported as information. Judged instead: the Slurm commands DryPipe runs,
               counted by PATH shims (sbatch, squeue, sacct, scontrol, scancel: bash wrappers that
               log each call and exec the real command), put first on the drypipe process's PATH:
               sbatch <= ceil(N / MaxArraySize) (read with `scontrol show config`) and squeue < 100.
               The cluster: $SLURM_CONF, else the slurm.env that scripts/services-up.sh writes in
               $DRYPIPE_TEST_SERVICES (default /var/tmp/drypipe-test-services, then
               <repo>/.test-services); without one the workload is skipped, not failed.
  remote       N independent tasks `echo i > $out` (200, 20 with --quick) on the sshd of the tests
               (the ssh.env of scripts/services-up.sh, same search as slurm.env; skipped without it),
               run with `drypipe -v run`. No floor: reported are the wall time and the remote
               traffic DryPipe logs at the end ("remote hosts: N connections opened, M rsync calls,
               K ssh commands"); judged: one SSH connection per run (it is reused for everything).
  service      N instances (200, 20 with --quick) of a 5-task pipeline dropped at once, drained by
               `drypipe service`, against `drypipe run` on each in turn; judged: speed-up > 1x and
               the service's idle scan of 1000 finished instances < 50 ms. See bench/service.py.

DryPipe is timed as the whole CLI process (start to exit) on a fresh instance dir each run, with
its progress display on a pseudo-terminal as a user sees it (--progress-off: `run -q`); a
target is judged only at its nominal size. The DryPipe measured is the one of the venv of the
Python running this script (`make bench` builds a wheel and installs it in a fresh venv, as
users install DryPipe: scripts/run-bench.sh); its configuration is printed beside each ratio. Results also go to bench/results/latest.json.
`make bench` (scripts/run-bench.sh) starts the Slurm cluster first when run as root. On ext4
without a journal it first waits until 6 minutes passed since the deletions it knows of (its
wheel build's, the previous bench's cleanup): see bench/settle.py (--no-settle: measure at once)."""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shlex
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
from bench import setup_info  # noqa: E402
from bench import service as service_bench  # noqa: E402
from bench import settle as fs_settle  # noqa: E402

DEFAULT_RESULTS = REPO / "bench" / "results" / "latest.json"
CHILD_TIMEOUT_S = 300.0


@dataclass
class Workload:
    """A workload; the `floor` ones also time, after each DryPipe run, the no-op commands of
    FOLLOW_UPS on the instance it left."""
    name: str
    generator: str  # bench.pipelines:<function>
    size_env: str  # DRYPIPE_BENCH_<size_env>_N
    nominal: int
    quick: int
    target: str  # human readable
    kind: str = "floor"  # "floor": against a floor; "slurm", "remote": counted; "service": bench/service.py


WORKLOADS = [
    Workload("independent", "bench.pipelines:independent_1000", "INDEPENDENT", 1000, 20,
             "ratio <= 2.0x"),
    Workload("chain", "bench.pipelines:chain_200", "CHAIN", 200, 5, "ratio <= 2.0x"),
    Workload("run20k", "bench.pipelines:independent_20k", "RUN20K", 20_000, 200, "ratio <= 2.5x"),
    Workload("prepare", "bench.pipelines:static_100k", "STATIC", 100_000, 200,
             "wall <= 3 s and peak RSS <= 300 MB"),
    Workload("slurm", "bench.pipelines:slurm_1000", "SLURM", 1000, 30,
             "sbatch <= ceil(n / MaxArraySize), squeue < 100", kind="slurm"),
    Workload("remote", "bench.pipelines:remote_200", "REMOTE", 200, 20, "1 SSH connection per run",
             kind="remote"),
    Workload("service", service_bench.GENERATOR, "SERVICE", 200, 20, service_bench.TARGET, kind="service"),
]
BY_NAME = {w.name: w for w in WORKLOADS}
RATIO_TARGETS = {"independent": 2.0, "chain": 2.0, "run20k": 2.5}
PREPARE_MAX_S, PREPARE_MAX_MB = 3.0, 300.0
# (name, the command on the instance the workload's DryPipe run left, its target in seconds):
# nothing is left to do, the command must see so quickly
FOLLOW_UPS = {
    "prepare": [("prepare again", ["prepare", "--generator", "{generator}"], 2.0),
                ("list-states --state failed", ["list-states", "--state", "failed"], 1.0),
                ("status", ["status"], 1.0)],
    "run20k": [("run again", ["run", "--generator", "{generator}"], 2.0)],
}
PROGRESS = True  # drypipe runs with its progress display on a terminal (bench/run.py --progress-off)
CONFIG: dict = {}  # what is measured (bench/setup_info.py), set by main


class BenchError(Exception):
    """A run that failed or produced wrong output: its timing would mean nothing."""


class Skipped(Exception):
    """A workload that can't run here (no Slurm cluster): reported, not a failure."""


@dataclass
class Measure:
    seconds: float
    peak_rss_mb: float | None = None
    extra: dict = field(default_factory=dict)


# -- measuring ---------------------------------------------------------------------------------
def settle() -> None:
    """Before every timed run, floor or DryPipe: write back what earlier runs left dirty (a 20k-task
    run leaves ~100 MB of metadata), so that its writeback lands on nobody's clock."""
    os.sync()


def run_child(argv: list[str], env: dict, log_dir: str, name: str,
              timeout: float = CHILD_TIMEOUT_S, tty: bool = False) -> tuple[Measure, str]:
    """Run argv from the repo root; wall time start to exit and peak RSS (os.wait4) of the child.
    With tty, its stderr is a pseudo-terminal (DryPipe's progress display on, as for a user)."""
    out_path, err_path = os.path.join(log_dir, f"{name}.out"), os.path.join(log_dir, f"{name}.err")
    drain = None
    settle()
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        t0 = time.perf_counter()
        if tty:
            proc, drain = setup_info.popen_on_pty(argv, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=out)
        else:
            proc = subprocess.Popen(argv, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        watchdog = threading.Timer(timeout, proc.kill)  # a hung run must not hang the suite
        watchdog.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            watchdog.cancel()
        seconds = time.perf_counter() - t0
    if drain is not None:
        drain(err_path)
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
    command = ["prepare"] if w.name == "prepare" else ["run"] if PROGRESS else ["run", "-q"]
    argv = [*drypipe_argv(profile), *command, "--pipeline-instance-dir", instance, "--generator", w.generator]
    m, stdout = run_child(argv, env, work, "drypipe", tty=PROGRESS and command[0] == "run")
    check_drypipe_output(w, n, instance, stdout)
    if profile is None:
        for i, (name, args, _) in enumerate(FOLLOW_UPS.get(w.name, ())):
            args = [a.format(generator=w.generator) for a in args]
            follow, _ = run_child([*drypipe_argv(), *args, "--pipeline-instance-dir", instance], env, work,
                                  f"follow-up-{i}", tty=PROGRESS and args[0] == "run")
            m.extra[name] = follow.seconds
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
    fn = floors.run_chain if w.name == "chain" else floors.run_independent
    settle()
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
    if w.name in ("independent", "run20k", "slurm"):
        for i in range(n):
            if _read(out(f"t-{i}")).strip() != str(i):
                raise BenchError(f"{w.name}: task t-{i} wrote the wrong output")
    elif w.name == "chain":
        lines = _read(out(f"c-{n - 1}")).split()
        if lines != [str(i) for i in range(n)]:
            raise BenchError(f"chain: last task's file is {lines[:5]}..., expected 0..{n - 1}")
    elif w.name == "prepare":
        if not stdout.startswith(f"{n} tasks"):
            raise BenchError(f"prepare: expected '{n} tasks ...', got {stdout.strip()!r}")


def check_floor_output(w: Workload, n: int, out_dir: str) -> None:
    if w.name in ("independent", "run20k"):
        if len(os.listdir(out_dir)) != n:
            raise BenchError(f"{w.name} floor: missing outputs")
    elif w.name == "chain":
        if _read(os.path.join(out_dir, f"out_{n - 1}.txt")).split() != [str(i) for i in range(n)]:
            raise BenchError("chain floor: wrong output")


# -- one workload ------------------------------------------------------------------------------
def bench_workload(w: Workload, n: int, runs: int, scratch: str, profile_dir: str | None = None,
                   log=print, quick: bool = False) -> dict:
    """Runs of the floor and of DryPipe, each in a fresh dir under scratch.

    The dirs are deleted by the caller only after the whole suite: on ext4, creating inodes
    right after deleting thousands of them is measurably slower (the allocator skips recently
    deleted inodes), and that would charge one run for the cleanup of the one before."""
    if w.kind == "slurm":
        return bench_slurm(w, n, runs, scratch, profile_dir, log)
    if w.kind == "remote":
        return bench_remote(w, n, runs, scratch, profile_dir, log)
    if w.kind == "service":  # not profiled: its time is spent in many drypipe processes
        return service_bench.bench_service(n, runs, scratch, quick, w.nominal, BenchError, log)
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
        passed = dp_s <= PREPARE_MAX_S and dp_rss is not None and dp_rss <= PREPARE_MAX_MB
    else:
        passed = ratio is not None and ratio <= RATIO_TARGETS[w.name]
    result = {
        "name": w.name, "kind": "floor", "generator": w.generator, "n": n, "nominal_n": w.nominal, "runs": runs,
        "configuration": CONFIG.get("label"),
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
    result["follow_ups"] = []
    for name, _, limit in FOLLOW_UPS.get(w.name, ()):
        secs = [m.extra[name] for m in dp_runs if name in m.extra]
        if secs:
            result["follow_ups"].append({
                "name": name, "kind": "follow-up", "after": w.name, "n": n, "nominal_n": w.nominal,
                "runs": len(secs), "configuration": CONFIG.get("label"), "floor": None,
                "drypipe": {"median_s": _median(secs), "runs_s": secs}, "ratio": None,
                "target": f"wall <= {limit:g} s", "judged": judged,
                "passed": _median(secs) <= limit if judged else None})
    return result


# -- Slurm: counting the commands DryPipe runs on a real cluster -------------------------------
NO_SLURM = "no Slurm cluster (run scripts/services-up.sh as root)"
SLURM_COMMANDS = ("sbatch", "squeue", "sacct", "scontrol", "scancel")  # the ones shimmed and counted
SLURM_REQUIRED = ("sbatch", "squeue", "scontrol")
SQUEUE_LIMIT = 100
SLURM_TIMEOUT_S = 1200.0


def services_dirs() -> list[Path]:
    """Where scripts/services-up.sh writes slurm.env: $DRYPIPE_TEST_SERVICES, or else the dir
    `make test` and `make bench` use, or else the scripts' own default."""
    if os.environ.get("DRYPIPE_TEST_SERVICES"):
        return [Path(os.environ["DRYPIPE_TEST_SERVICES"])]
    return [Path("/var/tmp/drypipe-test-services"), REPO / ".test-services"]


def read_env_file(path: Path) -> dict[str, str]:
    """The `export KEY=VALUE` lines (values shell-quoted) of a services env file."""
    env = {}
    for line in path.read_text().splitlines():
        words = shlex.split(line, comments=True)
        if words and words[0] == "export":
            words = words[1:]
        for word in words:
            key, sep, value = word.partition("=")
            if sep:
                env[key] = value
    return env


def slurm_client_env() -> dict[str, str] | None:
    """What a Slurm client needs on top of os.environ (SLURM_CONF), or None without a cluster."""
    if os.environ.get("SLURM_CONF"):
        return {}
    for d in services_dirs():
        if (d / "slurm.env").is_file():
            env = read_env_file(d / "slurm.env")
            if env.get("SLURM_CONF"):
                return env
    return None


def real_slurm_commands() -> dict[str, str]:
    """name -> path of the real Slurm commands (from PATH, else /usr/bin)."""
    found = {}
    for name in SLURM_COMMANDS:
        path = shutil.which(name) or (f"/usr/bin/{name}" if os.access(f"/usr/bin/{name}", os.X_OK) else None)
        if path:
            found[name] = os.path.abspath(path)
    missing = [c for c in SLURM_REQUIRED if c not in found]
    if missing:
        raise BenchError(f"slurm: a cluster is configured but {', '.join(missing)} not found")
    return found


def write_shims(bin_dir: str, log_path: str, real: dict[str, str]) -> None:
    """A bash wrapper per command: appends '<epoch time> <name> <args>' to log_path, then execs
    the real command (same argv, stdin, stdout, exit status)."""
    os.makedirs(bin_dir, exist_ok=True)
    for name, path in real.items():
        shim = os.path.join(bin_dir, name)
        with open(shim, "w") as f:
            f.write("#!/usr/bin/env bash\n"
                    f"# DryPipe bench: count this call, then run the real {name}\n"
                    f"printf '%s %s %s\\n' \"${{EPOCHREALTIME:-0}}\" {shlex.quote(name)} \"$*\" "
                    f">> {shlex.quote(log_path)}\n"
                    f"exec {shlex.quote(path)} \"$@\"\n")
        os.chmod(shim, 0o755)


def read_calls(log_path: str) -> list[tuple[float, str, str]]:
    """The shims' log: (epoch time, command, args) per call."""
    calls = []
    for line in Path(log_path).read_text().splitlines():
        t, _, rest = line.partition(" ")
        name, _, args = rest.partition(" ")
        try:
            when = float(t.replace(",", "."))  # EPOCHREALTIME follows LC_NUMERIC
        except ValueError:
            when = 0.0
        calls.append((when, name, args))
    return calls


def array_elements(spec: str) -> int:
    """Jobs of an --array spec: '0-99', '0,3-5', '0-15:4', '0-999%50'."""
    total = 0
    for part in spec.split("%", 1)[0].split(","):
        rng, _, step = part.partition(":")
        lo, _, hi = rng.partition("-")
        total += len(range(int(lo), int(hi or lo) + 1, int(step or 1)))
    return total


def jobs_submitted(sbatch_args: list[str]) -> int:
    """Jobs the logged sbatch calls submitted (an array counts its elements)."""
    total = 0
    for args in sbatch_args:
        m = re.search(r"(?:^|\s)--array[= ](\S+)", args)
        total += array_elements(m.group(1)) if m else 1
    return total


def slurm_max_array_size(env: dict, scontrol: str) -> int:
    """MaxArraySize of the cluster (the bench's own call: not counted)."""
    try:
        res = subprocess.run([scontrol, "show", "config"], env=env, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as e:
        raise BenchError(f"slurm: scontrol show config: {e}") from e
    m = re.search(r"^MaxArraySize\s*=\s*(\d+)", res.stdout, re.M)
    if res.returncode != 0 or not m:
        raise BenchError(f"slurm: `scontrol show config` gave no MaxArraySize (exit {res.returncode}): "
                         f"{res.stderr.strip()[-500:]}")
    return int(m.group(1))


def cancel_jobs(env: dict, real: dict[str, str], sbatch_args: list[str]) -> None:
    """After a failed run: cancel what it left in the queue (by the job names it submitted)."""
    names = {m.group(1) for a in sbatch_args for m in [re.search(r"--job-name=(\S+)", a)] if m}
    if names and "scancel" in real:
        for name in sorted(names):
            subprocess.run([real["scancel"], f"--name={name}"], env=env, capture_output=True, timeout=60)


def run_drypipe_slurm(w: Workload, n: int, work: str, client_env: dict, real: dict[str, str],
                      profile: str | None = None) -> Measure:
    """One `drypipe run` with the shims first on its PATH; the calls counted go in m.extra."""
    bin_dir, log_path = os.path.join(work, "bin"), os.path.join(work, "slurm-calls.log")
    write_shims(bin_dir, log_path, real)
    Path(log_path).touch()
    plain_env = dict(os.environ, **client_env)
    env = dict(plain_env, **{f"DRYPIPE_BENCH_{w.size_env}_N": str(n)})
    env.pop("DRYPIPE_SERVICE_SLEEP_SCHEDULE", None)  # measure DryPipe's default polling schedule
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", os.defpath)
    instance = os.path.join(work, "instance")
    max_array = slurm_max_array_size(plain_env, real["scontrol"])
    argv = [*drypipe_argv(profile), "run", "-q", "--pipeline-instance-dir", instance, "--generator", w.generator]
    started = time.time()
    try:
        m, stdout = run_child(argv, env, work, "drypipe", timeout=SLURM_TIMEOUT_S)
    except BenchError:
        cancel_jobs(plain_env, real, [a for _, c, a in read_calls(log_path) if c == "sbatch"])
        raise
    if slurm_max_array_size(plain_env, real["scontrol"]) != max_array:
        raise BenchError("slurm: MaxArraySize changed during the run (the cluster was reconfigured)")
    check_drypipe_output(w, n, instance, stdout)
    calls = read_calls(log_path)
    sbatch = [(t, a) for t, c, a in calls if c == "sbatch"]
    submitted = jobs_submitted([a for _, a in sbatch])
    if submitted != n:
        raise BenchError(f"slurm: the sbatch calls seen by the shims submitted {submitted} jobs for {n} "
                         "tasks (did drypipe run the Slurm commands from its PATH?)")
    last_output = max(os.path.getmtime(os.path.join(instance, "output", f"t-{i}", "out.txt")) for i in range(n))
    m.extra.update({
        "max_array_size": max_array,
        "calls": {c: sum(1 for _, name, _ in calls if name == c) for c in SLURM_COMMANDS},
        "first_sbatch_s": min(t for t, _ in sbatch) - started,
        "last_output_s": last_output - started,  # when the last task's job wrote its file
    })
    return m


def bench_slurm(w: Workload, n: int, runs: int, scratch: str, profile_dir: str | None = None,
                log=print) -> dict:
    log(f"\n== {w.name} (n={n}, {runs} run{'s' if runs > 1 else ''}): {w.generator}")
    client_env = slurm_client_env()
    if client_env is None:
        log(f"   skipped: {NO_SLURM}")
        raise Skipped(NO_SLURM)
    real = real_slurm_commands()
    dp_runs: list[Measure] = []
    for r in range(runs):
        m = run_drypipe_slurm(w, n, tempfile.mkdtemp(prefix=f"{w.name}-drypipe-", dir=scratch), client_env, real)
        dp_runs.append(m)
        c = m.extra["calls"]
        log(f"   run {r + 1}  drypipe  {m.seconds:8.3f} s, first sbatch at {m.extra['first_sbatch_s']:.2f} s, "
            f"last output at {m.extra['last_output_s']:.2f} s; MaxArraySize {m.extra['max_array_size']}: "
            + ", ".join(f"{k} {v}" for k, v in c.items()))
    profile = None
    if profile_dir:
        os.makedirs(profile_dir, exist_ok=True)
        profile = os.path.abspath(os.path.join(profile_dir, f"{w.name}.prof"))
        m = run_drypipe_slurm(w, n, tempfile.mkdtemp(prefix=f"{w.name}-profiled-", dir=scratch), client_env,
                              real, profile=profile)
        log(f"   profiled {m.seconds:8.3f} s -> {profile}  (view: python -m pstats {profile})")
    return summarize_slurm(w, n, runs, dp_runs, profile)


def summarize_slurm(w: Workload, n: int, runs: int, dp_runs: list[Measure], profile: str | None) -> dict:
    """Judged on every run: sbatch <= ceil(n / MaxArraySize) and squeue < SQUEUE_LIMIT."""
    per_run = lambda key: [m.extra[key] for m in dp_runs]  # noqa: E731
    calls = {c: [m.extra["calls"][c] for m in dp_runs] for c in SLURM_COMMANDS}
    max_arrays = per_run("max_array_size")
    sbatch_limits = [math.ceil(n / a) for a in max_arrays]
    judged = n == w.nominal
    passed = all(s <= lim for s, lim in zip(calls["sbatch"], sbatch_limits)) and \
        max(calls["squeue"]) < SQUEUE_LIMIT
    seconds = [m.seconds for m in dp_runs]
    result = {
        "name": w.name, "kind": w.kind, "generator": w.generator, "n": n, "nominal_n": w.nominal, "runs": runs,
        "max_array_size": max_arrays,
        "drypipe": {"median_s": _median(seconds), "runs_s": seconds,
                    "median_peak_rss_mb": _median([m.peak_rss_mb for m in dp_runs]),
                    "peak_rss_mb": [m.peak_rss_mb for m in dp_runs],
                    "first_sbatch_s": per_run("first_sbatch_s"), "last_output_s": per_run("last_output_s")},
        "calls": {c: {"median": _median(v), "runs": v} for c, v in calls.items()},
        "sbatch_limit": sbatch_limits, "squeue_limit": SQUEUE_LIMIT,
        "target": f"sbatch <= {'/'.join(map(str, sorted(set(sbatch_limits))))}, squeue < {SQUEUE_LIMIT}",
        "judged": judged, "passed": passed if judged else None,
    }
    if profile:
        result["drypipe"]["profile"] = profile
    return result


# -- remote: tasks on the tests' sshd, and the SSH traffic DryPipe logs ------------------------
NO_SSHD = "no sshd for the tests (run scripts/services-up.sh as root)"
REMOTE_COUNTS = ("connections", "rsync", "ssh_commands")
REMOTE_LOG_RE = re.compile(r"remote hosts: (\d+) connections opened, (\d+) rsync calls, (\d+) ssh commands")


def ssh_client_env() -> dict[str, str] | None:
    """The DRYPIPE_TEST_SSH_* of the ssh.env that scripts/services-up.sh writes (same search as
    slurm.env), or None when there is none or its sshd does not answer."""
    import socket
    for d in services_dirs():
        if (d / "ssh.env").is_file():
            env = read_env_file(d / "ssh.env")
            needed = ("DRYPIPE_TEST_SSH_HOST", "DRYPIPE_TEST_SSH_PORT", "DRYPIPE_TEST_SSH_USER",
                      "DRYPIPE_TEST_SSH_KEY", "DRYPIPE_TEST_SSH_KNOWN_HOSTS")
            if not all(env.get(k) for k in needed):
                continue
            try:
                socket.create_connection((env["DRYPIPE_TEST_SSH_HOST"], int(env["DRYPIPE_TEST_SSH_PORT"])),
                                         timeout=3).close()
            except OSError:
                return None
            return env
    return None


def remote_shell(ssh: dict, command: str) -> str:
    """Run a command on the bench's remote host (its own calls: not counted); its stdout."""
    argv = ["ssh", "-F", "/dev/null", "-p", ssh["DRYPIPE_TEST_SSH_PORT"], "-i", ssh["DRYPIPE_TEST_SSH_KEY"],
            "-o", "IdentitiesOnly=yes", "-o", f"UserKnownHostsFile={ssh['DRYPIPE_TEST_SSH_KNOWN_HOSTS']}",
            "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
            f"{ssh['DRYPIPE_TEST_SSH_USER']}@{ssh['DRYPIPE_TEST_SSH_HOST']}", command]
    try:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as e:
        raise BenchError(f"remote: ssh {command!r}: {e}") from e
    if res.returncode != 0:
        raise BenchError(f"remote: ssh {command!r} exited {res.returncode}: {res.stderr.strip()[-500:]}")
    return res.stdout


def parse_remote_counts(stderr: str) -> dict[str, int]:
    """The counters of the last "remote hosts: ..." line DryPipe logged (at INFO, with -v)."""
    found = REMOTE_LOG_RE.findall(stderr)
    if not found:
        raise BenchError("remote: drypipe logged no 'remote hosts: N connections opened, M rsync calls, "
                         "K ssh commands' line (was it run with -v?)")
    return dict(zip(REMOTE_COUNTS, map(int, found[-1])))


def run_drypipe_remote(w: Workload, n: int, work: str, ssh: dict, remote_home: str,
                       profile: str | None = None) -> Measure:
    """One `drypipe -v run` of the remote pipeline, in a fresh remote base dir (made before and
    removed after the timed run); the counters it logged go in m.extra."""
    base = f"{remote_home.rstrip('/')}/drypipe-bench-{os.path.basename(work)}"
    remote_shell(ssh, f"rm -rf {shlex.quote(base)} && mkdir -p {shlex.quote(base)}")
    specs = f"{ssh['DRYPIPE_TEST_SSH_USER']}@{ssh['DRYPIPE_TEST_SSH_HOST']}:{ssh['DRYPIPE_TEST_SSH_PORT']}:" \
            f"{ssh['DRYPIPE_TEST_SSH_KEY']}"
    env = dict(os.environ, **{f"DRYPIPE_BENCH_{w.size_env}_N": str(n), "DRYPIPE_BENCH_REMOTE_SPECS": specs,
                              "DRYPIPE_BENCH_REMOTE_BASE": base,
                              "DRYPIPE_SSH_KNOWN_HOSTS": ssh["DRYPIPE_TEST_SSH_KNOWN_HOSTS"]})
    env.pop("DRYPIPE_SERVICE_SLEEP_SCHEDULE", None)  # measure DryPipe's default polling schedule
    instance = os.path.join(work, "instance")
    argv = [*drypipe_argv(profile), "-v", "run", "-q", "--pipeline-instance-dir", instance,
            "--generator", w.generator]
    try:
        m, stdout = run_child(argv, env, work, "drypipe")
    finally:
        try:
            remote_shell(ssh, f"rm -rf {shlex.quote(base)}")
        except BenchError:
            pass
    for i in range(n):
        if _read(os.path.join(instance, "output", f"t-{i}", "out.txt")).strip() != str(i):
            raise BenchError(f"remote: task t-{i} wrote the wrong output")
    m.extra.update(parse_remote_counts(Path(work, "drypipe.err").read_text(errors="replace")))
    return m


def bench_remote(w: Workload, n: int, runs: int, scratch: str, profile_dir: str | None = None,
                 log=print) -> dict:
    log(f"\n== {w.name} (n={n}, {runs} run{'s' if runs > 1 else ''}): {w.generator}")
    ssh = ssh_client_env()
    if ssh is None:
        log(f"   skipped: {NO_SSHD}")
        raise Skipped(NO_SSHD)
    remote_home = remote_shell(ssh, 'echo "$HOME"').strip()
    dp_runs: list[Measure] = []
    for r in range(runs):
        m = run_drypipe_remote(w, n, tempfile.mkdtemp(prefix=f"{w.name}-drypipe-", dir=scratch), ssh, remote_home)
        dp_runs.append(m)
        log(f"   run {r + 1}  drypipe  {m.seconds:8.3f} s: {m.extra['connections']} connections opened, "
            f"{m.extra['rsync']} rsync calls, {m.extra['ssh_commands']} ssh commands")
    profile = None
    if profile_dir:
        os.makedirs(profile_dir, exist_ok=True)
        profile = os.path.abspath(os.path.join(profile_dir, f"{w.name}.prof"))
        m = run_drypipe_remote(w, n, tempfile.mkdtemp(prefix=f"{w.name}-profiled-", dir=scratch), ssh,
                               remote_home, profile=profile)
        log(f"   profiled {m.seconds:8.3f} s -> {profile}  (view: python -m pstats {profile})")
    host = f"{ssh['DRYPIPE_TEST_SSH_USER']}@{ssh['DRYPIPE_TEST_SSH_HOST']}:{ssh['DRYPIPE_TEST_SSH_PORT']}"
    return summarize_remote(w, n, runs, dp_runs, profile, host)


def summarize_remote(w: Workload, n: int, runs: int, dp_runs: list[Measure], profile: str | None,
                     host: str = "") -> dict:
    """Judged at the nominal size: every run opened exactly one SSH connection."""
    seconds = [m.seconds for m in dp_runs]
    counts = {c: [m.extra[c] for m in dp_runs] for c in REMOTE_COUNTS}
    judged = n == w.nominal
    passed = all(c == 1 for c in counts["connections"])
    result = {
        "name": w.name, "kind": w.kind, "generator": w.generator, "n": n, "nominal_n": w.nominal, "runs": runs,
        "host": host,
        "drypipe": {"median_s": _median(seconds), "runs_s": seconds,
                    "median_peak_rss_mb": _median([m.peak_rss_mb for m in dp_runs if m.peak_rss_mb is not None]),
                    "peak_rss_mb": [m.peak_rss_mb for m in dp_runs]},
        "counts": {c: {"median": _median(v), "runs": v} for c, v in counts.items()},
        "target": w.target, "judged": judged, "passed": passed if judged else None,
    }
    if profile:
        result["drypipe"]["profile"] = profile
    return result


def format_remote_table(results: list[dict]) -> str:
    """The remote workload: wall time and SSH traffic (information), connections (judged)."""
    def count(values):  # the median, and the range when the runs differ
        text = f"{statistics.median(values):g}"
        return text if min(values) == max(values) else f"{text} ({min(values)}-{max(values)})"
    rows = [("workload", "tasks", "host", "wall median", "connections", "rsync calls", "ssh commands", "target",
             "result")]
    for r in results:
        if r.get("kind") != "remote":
            continue
        rows.append((r["name"], str(r["n"]), r.get("host", ""), f"{r['drypipe']['median_s']:.3f} s",
                     *(count(r["counts"][c]["runs"]) for c in REMOTE_COUNTS), r["target"], verdict(r)))
    title = "Remote over SSH (the tests' sshd; median of the runs; counts as logged by drypipe -v)"
    return title + "\n" + _table(rows, left=(0, 2, len(rows[0]) - 2, len(rows[0]) - 1))


# -- report ------------------------------------------------------------------------------------
def verdict(r: dict) -> str:
    if not r["judged"]:
        return f"not judged (n != {r['nominal_n']})"
    return "PASS" if r["passed"] else "FAIL"


def _table(rows: list[tuple], left: tuple[int, ...]) -> str:
    """Aligned columns (those in left to the left, the others to the right), a rule under the head."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(wd) if i in left else c.rjust(wd) for i, (c, wd) in
                       enumerate(zip(row, widths))).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * wd for wd in widths))
    return "\n".join(lines)


def format_table(results: list[dict]) -> str:
    """The workloads timed against a floor."""
    def secs(s, rss=None):
        return f"{s:.3f} s" + (f" / {rss:.0f} MB" if rss is not None else "")
    rows = [("workload", "n", "floor median", "drypipe median", "ratio", "configuration", "target", "result")]
    for r in results:
        if r.get("kind", "floor") not in ("floor", "follow-up"):
            continue
        floor = r["floor"]
        rows.append((r["name"] if r.get("kind") != "follow-up" else f"  {r['name']}", str(r["n"]),
                     secs(floor["median_s"], floor.get("median_peak_rss_mb")) if floor else "-",
                     secs(r["drypipe"]["median_s"],
                          r["drypipe"]["median_peak_rss_mb"] if r["name"] == "prepare" else None),
                     f"{r['ratio']:.2f}x" if r["ratio"] is not None else "-", r.get("configuration") or "?",
                     r["target"], verdict(r)))
    return _table(rows, left=(0, 5, 6, 7))


def format_slurm_table(results: list[dict]) -> str:
    """The Slurm workload: wall time (information) and the Slurm commands DryPipe ran (judged)."""
    def count(values):  # the median, and the range when the runs differ
        med = statistics.median(values)
        text = f"{med:g}"
        return text if min(values) == max(values) else f"{text} ({min(values)}-{max(values)})"
    rows = [("workload", "tasks", "MaxArraySize", "wall median", "1st sbatch", *SLURM_COMMANDS, "target",
             "result")]
    for r in results:
        if r.get("kind") != "slurm":
            continue
        d = r["drypipe"]
        rows.append((r["name"], str(r["n"]), "/".join(map(str, sorted(set(r["max_array_size"])))),
                     f"{d['median_s']:.1f} s", f"{statistics.median(d['first_sbatch_s']):.2f} s",
                     *(count(r["calls"][c]["runs"]) for c in SLURM_COMMANDS), r["target"], verdict(r)))
    title = ("Slurm (real cluster; median of the runs. Wall time is information, not judged: the "
             "cluster's scheduling dominates it)")
    return title + "\n" + _table(rows, left=(0, len(rows[0]) - 2, len(rows[0]) - 1))


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
    p.add_argument("--progress-off", action="store_true",
                   help="run drypipe with -q (by default its progress display is on, on a pseudo-terminal)")
    p.add_argument("--no-settle", action="store_true",
                   help="measure at once, even on ext4 without a journal within 6 minutes of deletions "
                        "(by default the bench waits: see bench/settle.py)")
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
    global PROGRESS
    PROGRESS = not args.progress_off
    script = Path(drypipe_argv()[0])
    CONFIG.update(setup_info.configuration(str(script.parent / "python") if script.name == "drypipe"
                                           else sys.executable, PROGRESS))
    info["configuration"] = CONFIG
    print(f"DryPipe benchmarks: {info['cpus']} CPUs, Python {info['python']}, "
          f"load average {info['loadavg_at_start'][0]:.2f}" + (" [--quick]" if args.quick else ""))
    print(f"measuring: drypipe {CONFIG['version']} from {CONFIG['file']} ({CONFIG['label']})")
    results, errors, skipped = [], [], []
    scratch = tempfile.mkdtemp(prefix="drypipe-bench-", dir=args.work_dir)
    info["work_dir"] = scratch
    if not (args.quick or args.no_settle):
        info["settle_wait_s"] = fs_settle.wait_for_file_system(scratch)
    try:
        for w in args.workloads:
            try:
                r = bench_workload(w, size_of(w, args.quick), args.runs, scratch, args.profile,
                                   quick=args.quick)
                results.append(r)
                results.extend(r.pop("follow_ups", []))
            except Skipped as e:
                skipped.append({"name": w.name, "reason": str(e)})
            except BenchError as e:
                errors.append({"name": w.name, "error": str(e)})
                print(f"   ERROR: {e}", file=sys.stderr)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        fs_settle.stamp()  # (the next bench waits for these deletions to stop mattering)
    elapsed = time.perf_counter() - started
    print()
    tables = []
    if any(r.get("kind", "floor") in ("floor", "follow-up") for r in results):
        tables.append(format_table(results))
    if any(r.get("kind") == "slurm" for r in results):
        tables.append(format_slurm_table(results))
    if any(r.get("kind") == "remote" for r in results):
        tables.append(format_remote_table(results))
    if any(r.get("kind") == "service" for r in results):
        tables.append(service_bench.format_table(results))
    if tables:
        print("\n\n".join(tables))
    for s in skipped:
        print(f"{s['name']}: skipped: {s['reason']}")
    for e in errors:
        print(f"{e['name']}: ERROR (see above)")
    failed = [r["name"] for r in results if r["judged"] and not r["passed"]]
    ok = not errors and not failed
    report = {"ok": ok, "quick": args.quick, "runs": args.runs, "elapsed_s": elapsed,
              "started_at": started_at, "code": code_version(), "machine": info,
              "workloads": results, "errors": errors, "skipped": skipped}
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
