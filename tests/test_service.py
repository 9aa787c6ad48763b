"""`drypipe service`, against real processes: the service CLI in a subprocess, real task
processes, real markers in real folders (and the test Slurm cluster for its test).

The pipelines and config generators are in tests/pipelines/service.py; every task step appends a
line to runs/<key> of its instance, so "ran exactly once" is counted from what ran, not read
from the states the service wrote."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, drypipe, wait_until

MOD = "tests.pipelines.service"
FAST = "0,0.1,0.2"  # --sleep-schedule: a dropped instance is seen within 0.2 s


class Service:
    """A `drypipe service` process on a home dir; its stderr in home/../service-<n>.err."""
    count = 0

    def __init__(self, home: Path, config: str, *extra, env=None, schedule=FAST):
        Service.count += 1
        self.home = home
        self.err_path = home.parent / f"service-{Service.count}.err"
        self.err = open(self.err_path, "w")
        full_env = {**os.environ, **(env or {})}
        args = [sys.executable, "-m", "drypipe", "service", "-pid", str(home)]
        if config:
            args += ["--config-generator", f"{MOD}:{config}"]
        args += ["--sleep-schedule", schedule, *map(str, extra)]
        self.proc = subprocess.Popen(args, cwd=REPO, env=full_env, stdout=subprocess.DEVNULL, stderr=self.err)

    @property
    def stderr(self) -> str:
        return self.err_path.read_text()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=30) -> int:
        if self.alive():
            self.proc.send_signal(sig)
        rc = self.proc.wait(timeout=timeout)
        self.err.close()
        return rc

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.alive():
            self.proc.kill()
            self.proc.wait()
        self.err.close()


def drop(instances_dir: Path, name: str, files: dict[str, str] | None = None) -> Path:
    """Prepare an instance folder (its data first), then write the marker last."""
    d = instances_dir / name
    (d / ".drypipe").mkdir(parents=True)
    for rel, text in (files or {}).items():
        (d / rel).parent.mkdir(parents=True, exist_ok=True)
        (d / rel).write_text(text)
    (d / ".drypipe" / "state.ready").write_text("")
    return d


def marker(d: Path) -> str | None:
    found = [p.name[len("state."):] for p in (d / ".drypipe").glob("state.*")]
    assert len(found) <= 1, f"{d}: more than one marker: {found}"
    return found[0] if found else None


def wait_markers(dirs, state: str, svc: Service | None = None, timeout=90.0):
    def done():
        if svc is not None and not svc.alive():
            raise AssertionError(f"the service exited ({svc.proc.returncode}):\n{svc.stderr}")
        return all(marker(d) == state for d in dirs)
    wait_until(done, timeout=timeout, what=f"markers state.{state} in {[d.name for d in dirs]}")


def runs(d: Path) -> dict[str, list[str]]:
    """task key -> the lines its steps appended (one per execution of a step)."""
    r = d / "runs"
    return {p.name: p.read_text().splitlines() for p in sorted(r.iterdir())} if r.is_dir() else {}


def instance_log(d: Path) -> str:
    p = d / ".drypipe" / "instance.log"
    return p.read_text() if p.exists() else ""


def snapshot(root: Path) -> dict[str, tuple]:
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        out[str(p.relative_to(root))] = (p.is_dir(), st.st_mtime_ns, p.read_bytes() if p.is_file() else None)
    return out


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is not alive
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] not in ("Z", "X")
    except OSError:
        return False


# -- what a user does: drop folders, watch them run, see them at a glance ---------------------------

def test_three_pipeline_types_run_every_dropped_instance_exactly_once(tmp_path):
    home = tmp_path / "home"
    chains, fanouts, pycalls = home / "chains", home / "fanouts", home / "pycalls"
    dropped = [drop(chains, f"c{i}") for i in range(3)] + [drop(fanouts, f"f{i}") for i in range(2)] + \
        [drop(pycalls, f"p{i}") for i in range(2)]
    # a half-copied folder: its data is there, its marker not yet: never touched
    half = chains / "half"
    (half / ".drypipe").mkdir(parents=True)
    (half / "data.txt").write_text("half of it\n")
    (chains / "no-drypipe").mkdir()
    before = snapshot(half)
    with Service(home, "three_types", env={"SVC_SLEEP": "0.05"}) as svc:
        wait_markers(dropped, "completed", svc)
        late = drop(chains, "late", {"input.txt": "dropped while the service runs\n"})
        wait_markers([late], "completed", svc)
        status = drypipe("status", "-pid", home, check=True).stdout
        listing = drypipe("list-states", "-pid", late, check=True).stdout
        assert svc.stop() == 0, svc.stderr
    for d in dropped + [late]:
        ran = runs(d)
        expected = {"a", "b", "c"} if d.parent == chains else \
            {"part.0", "part.1", "part.2", "gather"} if d.parent == fanouts else {"square", "check"}
        assert set(ran) == expected, (d, ran)
        assert all(len(lines) == 1 for lines in ran.values()), (d, ran)  # exactly once
        assert marker(d) == "completed" and "completed" in instance_log(d)
    assert (late / "output" / "c" / "c.txt").read_text() == "2\n"
    assert snapshot(half) == before and marker(half) is None
    assert not (half / ".drypipe" / "drypipe.db").exists()
    # drypipe status on the home: one line per instance, with its type, state and task counts
    lines = status.splitlines()
    assert "9 instances" in lines[0]
    for d in dropped + [late]:
        row = next(ln for ln in lines if re.search(rf"\s{d.parent.name}/{d.name}\s", ln))
        kind = {"chains": "chain", "fanouts": "fanout", "pycalls": "pycall"}[d.parent.name]
        assert row.split()[0] == kind and row.split()[2] == "completed", row
    assert re.search(r"chains/c0\s+completed\s+3: 3 completed", status), status
    assert re.search(r"chains/half\s+-\s+0", status), status
    assert "c" in listing and "completed" in listing


def test_an_instance_that_breaks_fails_alone(tmp_path):
    """A generator that raises, a task that fails, a corrupt database: each instance fails with its
    reason in instance.log; the healthy ones beside them complete and the service goes on."""
    home = tmp_path / "home"
    healthy = [drop(home / "chains", f"ok{i}") for i in range(2)]
    broken = drop(home / "broken", "b1")
    failing = drop(home / "failing", "f1")
    corrupt = drop(home / "chains", "corrupt", {".drypipe/drypipe.db": "this is not a database\n" * 100})
    with Service(home, "with_broken") as svc:
        wait_markers(healthy, "completed", svc)
        wait_markers([broken, failing, corrupt], "failed", svc)
        assert svc.alive()
        later = drop(home / "chains", "after-the-failures")
        wait_markers([later], "completed", svc)
        assert svc.stop() == 0, svc.stderr
    assert "this generator is broken on purpose" in instance_log(broken)
    assert re.search(r"failed: .*task work failed\.1", instance_log(failing)), instance_log(failing)
    assert "out.log" in instance_log(failing)
    assert "failed: " in instance_log(corrupt) and "database" in instance_log(corrupt).lower()
    assert "Traceback" not in svc.stderr
    for d in healthy + [later]:
        assert {k: len(v) for k, v in runs(d).items()} == {"a": 1, "b": 1, "c": 1}


def test_a_failed_instance_rearmed_retries_its_failed_step_only(tmp_path):
    home = tmp_path / "home"
    inst = drop(home / "failing", "f1")
    with Service(home, "with_broken") as svc:
        wait_markers([inst], "failed", svc)
        assert runs(inst) == {"prep": ["prep s0"], "work": ["work s0", "work s1"]}
        (inst / "fixed").write_text("")
        (inst / ".drypipe" / "state.failed").rename(inst / ".drypipe" / "state.ready")
        wait_markers([inst], "completed", svc)
        assert svc.stop() == 0
    # prep did not run again, nor step 0 of work: only the step that failed
    assert runs(inst) == {"prep": ["prep s0"], "work": ["work s0", "work s1", "work s1"]}
    assert "1 failed task(s) retried" in instance_log(inst)


# -- stopping and crashing --------------------------------------------------------------------------

def test_sigterm_exits_0_leaves_tasks_running_and_the_next_service_reattaches(tmp_path):
    home = tmp_path / "home"
    insts = [drop(home / "chains", f"c{i}") for i in range(2)]
    env = {"SVC_GATE": "1"}  # task a of each instance waits for its `release` file
    with Service(home, "chains_only", env=env) as svc:
        wait_until(lambda: all((d / "pids" / "a").exists() for d in insts), timeout=60, what="tasks a started")
        pids = [int((d / "pids" / "a").read_text()) for d in insts]
        assert svc.stop(signal.SIGTERM) == 0, svc.stderr
    assert all(pid_alive(p) for p in pids), "SIGTERM of the service must leave its tasks running"
    assert [marker(d) for d in insts] == ["running", "running"]
    with Service(home, "chains_only", env=env) as svc2:
        for d in insts:
            (d / "release").write_text("")
        wait_markers(insts, "completed", svc2)
        assert svc2.stop(signal.SIGINT) == 0, svc2.stderr  # Ctrl-C: the same
    for d in insts:
        assert {k: len(v) for k, v in runs(d).items()} == {"a": 1, "b": 1, "c": 1}
        assert "resumed by the service" in instance_log(d)


def test_sigkill_of_the_service_mid_run_then_restart_runs_every_task_once(tmp_path):
    home = tmp_path / "home"
    # c0's task a waits for its release file: it is surely running when the service is killed;
    # the others (released from the start) run their tasks of 0.3 s, two instances at a time
    insts = [drop(home / "chains", f"c{i}", {"release": ""} if i else None) for i in range(5)]
    env = {"SVC_SLEEP": "0.3", "SVC_GATE": "1"}
    with Service(home, "chains_only", "-j", 2, env=env) as svc:
        wait_until(lambda: (insts[0] / "pids" / "a").exists() and sum(len(runs(d)) for d in insts) >= 4,
                   timeout=60, what="a few tasks ran")
        svc.proc.kill()  # kill -9
        svc.proc.wait()
    gated = int((insts[0] / "pids" / "a").read_text())
    assert pid_alive(gated), "a task must outlive a kill -9 of the service"
    assert marker(insts[0]) == "running"
    with Service(home, "chains_only", "-j", 2, env=env) as svc2:
        (insts[0] / "release").write_text("")
        wait_markers(insts, "completed", svc2, timeout=120)
        assert svc2.stop() == 0
    for d in insts:
        assert {k: len(v) for k, v in runs(d).items()} == {"a": 1, "b": 1, "c": 1}, runs(d)
        assert (d / "output" / "c" / "c.txt").read_text() == "2\n"


def test_a_second_service_on_the_same_home_is_refused(tmp_path):
    home = tmp_path / "home"
    with Service(home, "chains_only") as svc:
        wait_until(lambda: (home / ".drypipe" / "service.json").exists(), timeout=30, what="service up")
        other = drypipe("service", "-pid", home, "--config-generator", f"{MOD}:chains_only", cwd=REPO, timeout=60)
        assert other.returncode == 2 and "another drypipe service is running on this home" in other.stderr, other
        assert svc.alive()
        assert svc.stop() == 0


# -- caps: -j across the service, max_running per type -----------------------------------------------

def _spans(spans_dir: Path) -> dict[str, tuple[float, float]]:
    out = {}
    for p in spans_dir.iterdir():
        words = dict(line.split() for line in p.read_text().splitlines())
        out[p.name] = (float(words["start"]), float(words["end"]))
    return out


def _max_overlap(intervals) -> int:
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    cur = best = 0
    for _, delta in events:
        cur += delta
        best = max(best, cur)
    return best


def test_jobs_cap_local_tasks_across_instances_and_max_running_caps_a_type(tmp_path):
    home = tmp_path / "home"
    spans_dir = tmp_path / "spans"
    insts = [drop(home / "sleepers", f"s{i}") for i in range(3)] + [drop(home / "solo", f"o{i}") for i in range(2)]
    with Service(home, "capped", "-j", 2, env={"SVC_SPANS": str(spans_dir), "SVC_SLEEP": "0.3"}) as svc:
        wait_markers(insts, "completed", svc)
        assert svc.stop() == 0
    spans = _spans(spans_dir)
    assert len(spans) == 15
    assert _max_overlap(spans.values()) == 2  # never more than -j 2 at once, and 2 were used
    # max_running=1: the two solo instances never ran at the same time
    solo = [[v for k, v in spans.items() if k.startswith(f"o{i}.")] for i in range(2)]
    (s0, e0), (s1, e1) = [(min(s for s, _ in x), max(e for _, e in x)) for x in solo]
    assert e0 <= s1 or e1 <= s0, (solo, "solo instances overlapped")


# -- configuration and logging -----------------------------------------------------------------------

@pytest.mark.parametrize("config, message", [
    ("config_raises", r"--config-generator '.*:config_raises' raised ValueError: cannot read the site config"),
    ("config_yields_junk", r"yielded 'not a pipeline type': expected PipelineType"),
    ("config_bad_max_running", r"pipeline type 'chain': max_running 0 must be None or an int >= 1"),
    ("no_such_function", r"has no function 'no_such_function'"),
])
def test_a_bad_config_generator_is_a_one_line_error_at_start_up(tmp_path, config, message):
    res = drypipe("service", "-pid", tmp_path / "home", "--config-generator", f"{MOD}:{config}", cwd=REPO,
                  timeout=60)
    assert res.returncode == 2, res
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and re.search(message, lines[0]), res
    assert "Traceback" not in res.stderr


def test_options_come_from_the_environment_and_log_conf_configures_logging(tmp_path):
    home = tmp_path / "home"
    inst = drop(home / "chains", "c1")
    log_file = tmp_path / "custom.log"
    conf = tmp_path / "logging.json"
    conf.write_text(json.dumps({
        "version": 1, "disable_existing_loggers": False,
        "formatters": {"f": {"format": "CUSTOM %(levelname)s %(name)s %(message)s"}},
        "handlers": {"file": {"class": "logging.FileHandler", "filename": str(log_file), "formatter": "f"}},
        "loggers": {"drypipe.service": {"level": "INFO", "handlers": ["file"]}}}))
    env = {"DRYPIPE_PIPELINE_INSTANCE_DIR": str(home), "DRYPIPE_SERVICE_CONFIG_GENERATOR": f"{MOD}:chains_only",
           "DRYPIPE_SERVICE_SLEEP_SCHEDULE": FAST, "DRYPIPE_LOGGING_CONF": str(conf)}
    err = open(tmp_path / "err", "w")
    proc = subprocess.Popen([sys.executable, "-m", "drypipe", "service"], cwd=REPO, env={**os.environ, **env},
                            stdout=subprocess.DEVNULL, stderr=err)
    try:
        wait_markers([inst], "completed", timeout=60)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        err.close()
    text = log_file.read_text()
    assert "CUSTOM INFO drypipe.service" in text and re.search(r"chain c1: completed \(3 tasks\)", text), text
    assert not (home / ".drypipe" / "service.log").exists()  # the configuration replaced the default log


# -- on the Slurm cluster -----------------------------------------------------------------------------

@pytest.mark.slurm
def test_a_service_whose_instances_run_on_slurm(tmp_path):
    from conftest import service_env
    from drypipe.executors import slurm as slurm_executor
    env = {**service_env("slurm.env", "slurm-up.sh")}
    home = tmp_path / "home"
    insts = [drop(home / "slurm", f"s{i}") for i in range(2)]
    try:
        with Service(home, "slurm_types", env=env, schedule="0,0.5,1") as svc:
            wait_markers(insts, "completed", svc, timeout=240)
            assert svc.stop() == 0
    finally:
        for d in insts:
            subprocess.run(["scancel", f"--name={slurm_executor.job_name(str(d))}"], env={**os.environ, **env},
                           capture_output=True, timeout=30)
    from drypipe import Instance
    for d in insts:
        assert {k: len(v) for k, v in runs(d).items()} == {"a": 1, "b": 1}
        assert (d / "output" / "b" / "b.txt").read_text() == "42\n"
        tasks = Instance(str(d)).tasks()
        assert {t.executer_type for t in tasks} == {"slurm"}
        # '<array job>_<index>': ran as elements of Slurm job arrays (a local pid has no '_')
        assert all(re.match(r"^\d+_\d+$", t.job_id or "") for t in tasks), [t.job_id for t in tasks]
        assert all((d / ".drypipe" / t.key / "slurm-job").exists() for t in tasks)


# -- the README's example ----------------------------------------------------------------------------

def _readme_blocks(lang: str) -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text.split("## Service mode", 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"```{lang}\n(.*?)```", section, re.S)


def test_the_readme_service_example_is_the_example_file_and_runs_as_shown(tmp_path):
    code = _readme_blocks("python")[0]
    example = (REPO / "examples" / "service_config.py").read_text()
    assert example.endswith(code.split("\n", 1)[1]), "examples/service_config.py differs from the README"
    drop_commands = next(b for b in _readme_blocks("bash") if "state.ready" in b)
    home = tmp_path / "service-home"
    env = {**os.environ, "PYTHONPATH": str(REPO / "examples")}
    err = open(tmp_path / "err", "w")
    proc = subprocess.Popen([sys.executable, "-m", "drypipe", "service", "-pid", str(home), "--config-generator",
                             "service_config:config", "-j", "4", "--sleep-schedule", FAST],
                            cwd=REPO / "examples", env=env, stdout=subprocess.DEVNULL, stderr=err)
    try:
        wait_until(lambda: (home / ".drypipe" / "service.json").exists(), timeout=30, what="service up")
        subprocess.run(["bash", "-e", "-c", drop_commands], cwd=tmp_path, check=True)
        inst = home / "samples" / "run-001"
        wait_markers([inst], "completed", timeout=60)
        status = drypipe("status", "-pid", home, check=True).stdout
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        err.close()
    assert (inst / "output" / "summary" / "summary.txt").read_text() == "s1 75% GC\ns2 25% GC\n"
    assert re.search(r"gc\s+samples/run-001\s+completed\s+3: 3 completed", status), status
    assert "completed (3 tasks)" in (home / ".drypipe" / "service.log").read_text()


def test_an_instance_deleted_while_it_runs_fails_alone(tmp_path):
    home = tmp_path / "home"
    doomed, other = drop(home / "chains", "doomed"), drop(home / "chains", "other")
    with Service(home, "chains_only", env={"SVC_GATE": "1"}) as svc:
        wait_until(lambda: (doomed / "pids" / "a").exists() and (other / "pids" / "a").exists(), timeout=60,
                   what="tasks a started")
        subprocess.run(["rm", "-rf", str(doomed)], check=True)
        wait_until(lambda: "doomed: failed" in (home / ".drypipe" / "service.log").read_text(), timeout=60,
                   what="the deleted instance reported failed")
        (other / "release").write_text("")
        wait_markers([other], "completed", svc)
        assert svc.alive()
        assert svc.stop() == 0
    assert {k: len(v) for k, v in runs(other).items()} == {"a": 1, "b": 1, "c": 1}
