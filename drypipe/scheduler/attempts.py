"""The attempts of tasks (the `attempt` table, the users' `attempts` view): one row per launch.

Kept by the state machine's record hook (Orchestrator._record), so an attempt follows the task's
transitions and nothing else: `launched` opens one (attempt N+1, its submit time, what a Slurm
task requested), its first `step-started` is its start, a terminal state closes it with what the
task reported using (the launcher's `usage` line: exit status, host, CPU of the whole reaped
process tree, peak memory of its cgroup) and, for Slurm, what sacct adds. `launched -> ready`
(a launch that never happened) removes it. Rows are written with the round's other changes."""
from __future__ import annotations

import os
import re

from ..state import states as S
from ..state import sql
from .changes import launch_fingerprint
from .fingerprint import DIGEST_LEN
from ..executors.local import IO_COUNTERS
from ..executors.slurm_text import slurm_time_seconds
from .slurm_tasks import effective_conf

COLUMNS = sql.ATTEMPT_COLUMNS
_HOST = os.uname().nodename  # what a launcher's usage line says (bash's $HOSTNAME: gethostname())


class Attempt:
    __slots__ = COLUMNS

    def __init__(self, **values):
        for c in COLUMNS:
            setattr(self, c, values.get(c))

    def row(self) -> tuple:
        return tuple(getattr(self, c) for c in COLUMNS)


def record(orch, n, state: str, step, at: float) -> None:
    """n's state just became `state` (one transition): keep its attempt in step."""
    a = n.run
    if state == S.LAUNCHED:
        n.attempt += 1
        digest, fingerprint = launch_fingerprint(orch, n)
        orch.store.save_fingerprint(n.id, n.attempt, fingerprint)
        n.run = a = Attempt(task_id=n.id, attempt=n.attempt, executer=_executer(n), hash=digest,
                            workdir=os.path.join(orch.instance_dir, "output", n.key), status="running",
                            submit=at, **requested(effective_conf(n)) if n.executer_type == "slurm" else {})
    elif a is None:
        return
    elif state == S.STEP_STARTED:
        if a.start is not None:
            return
        a.start = at
    elif state in S.TERMINAL:
        a.status, a.step, a.complete = state, step, at
        a.start = a.start if a.start is not None else n.started_at
        a.native_id = _native(n.job_id)
        for k, v in (n.usage or {}).items():
            setattr(a, k, v)
        if state == S.COMPLETED:
            a.exit = 0
            n.fp_hash = a.hash
        n.usage = None
        n.run = None
    elif state == S.READY and a.status == "running":  # launch-lost: it never happened
        orch.store.delete_attempt(a)
        n.attempt -= 1
        n.run = None
        return
    else:
        return
    orch.store.save_attempt(a)


def with_rusage(usage: dict | None, returncode: int | None, reaped: dict | None) -> dict:
    """The launcher's own `usage` line (none from a watched launcher that completed) completed
    with what its reaper got from wait4 and /proc/<pid>/io: CPU of the
    whole reaped tree to the microsecond (the line has clock ticks, read just before the end),
    peak memory from rusage where no cgroup gave one (ru_maxrss: the largest process of the tree,
    where a cgroup's peak is the tree's sum), and the exit status of a launcher that ended
    without a word (killed: 128 + signal, as a shell says it)."""
    out = dict(usage or {})
    if reaped:
        if reaped.get("cpu_user") is not None:
            out["cpu_user"], out["cpu_sys"] = reaped["cpu_user"], reaped.get("cpu_sys")
        if out.get("peak_rss") is None and reaped.get("peak_rss"):
            out["peak_rss"], out["peak_rss_source"] = reaped["peak_rss"], "rusage"
        if usage is None:  # a watched launcher that completed logs no usage line: all is here
            out.update((k, reaped[k]) for k in IO_COUNTERS if k in reaped)
            out["host"] = _HOST
    if "exit" not in out and returncode is not None:
        out["exit"] = 128 - returncode if returncode < 0 else returncode
    return out


def spent_cgroup(orch, n) -> None:
    """A local attempt ended: the memory cgroup its launcher made (`drypipe-<pid>`, empty now:
    a launcher forked by the spawner does not remove it, nor does one killed) is removed at the
    next wait (remove_spent_cgroups), after the launches its ending allowed."""
    if n.executer_type == "slurm" or (n.conf is not None and n.conf.is_remote) \
            or not str(n.job_id or "").isdigit() or os.environ.get("DRYPIPE_CGROUPS") != "1":
        return  # (a local launcher makes one only under DRYPIPE_CGROUPS=1: task_runner.sh)
    if not _MEMORY_CGROUP:  # where launchers make them: this process's own memory cgroup
        _MEMORY_CGROUP.append(_memory_cgroup())
    base = _MEMORY_CGROUP[0]
    if base:
        orch.spent_cgroups.append(os.path.join(base, f"drypipe-{n.job_id}"))


def remove_spent_cgroups(orch) -> None:
    spent, orch.spent_cgroups = orch.spent_cgroups, []
    for path in spent:
        try:
            os.rmdir(path)
        except OSError:
            pass  # none (not made, or removed), or busy


def sweep_cgroups() -> None:
    """Remove the attempt cgroups whose launcher is dead (killed, or its orchestrator was, so
    that nobody removed them): each launcher read its figures before it exited."""
    if not _MEMORY_CGROUP:
        _MEMORY_CGROUP.append(_memory_cgroup())
    base = _MEMORY_CGROUP[0]
    try:
        names = [e for e in os.listdir(base) if e.startswith("drypipe-")] if base else []
    except OSError:
        return
    for name in names:
        pid = name[len("drypipe-"):]
        if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            try:
                os.rmdir(os.path.join(base, name))
            except OSError:
                pass


_MEMORY_CGROUP: list = []


def _memory_cgroup() -> str | None:
    """This process's cgroup v1 memory dir (where launchers make their attempts' cgroups)."""
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                if ":memory:" in line:
                    return "/sys/fs/cgroup/memory" + line.split(":memory:", 1)[1].strip().rstrip("/")
    except OSError:
        pass
    return None


def set_native_id(orch, n) -> None:
    """The process or job of n's running attempt is known now."""
    if n.run is not None:
        n.run.native_id = _native(n.job_id)
        orch.store.save_attempt(n.run)


def add_accounting(orch, runs) -> None:
    """Slurm attempts that just ended: what sacct says they used, asked in one call for all."""
    runs = [a for a in runs if a is not None and a.native_id and a.status != "running"]
    figures = orch.slurm.account([a.native_id for a in runs]) if runs else {}
    for a in runs:
        f = figures.get(a.native_id)
        if not f:
            continue
        for k, v in f.items():
            if k == "exit" and a.exit is not None:
                continue  # the launcher's own word on its step's status is more precise
            if k == "peak_rss" and a.peak_rss is not None and a.peak_rss_source == "cgroup":
                continue
            setattr(a, k, v)
        orch.store.save_attempt(a)


def load(orch, rows) -> None:
    """rows of the attempt table: each task's count, and the running attempt of active tasks."""
    nodes = {n.id: n for n in orch.graph.nodes.values()} if rows else {}
    i_attempt, i_status, i_hash = COLUMNS.index("attempt"), COLUMNS.index("status"), COLUMNS.index("hash")
    for values in rows:
        n = nodes.get(values[0])
        if n is None:
            continue
        attempt, status, digest = values[i_attempt], values[i_status], values[i_hash]
        if attempt > n.attempt:
            n.attempt = attempt
        if status == S.COMPLETED and n.state == S.COMPLETED and len(digest) == DIGEST_LEN:
            n.fp_hash = digest  # its fingerprint's (older attempts have an 8-digit definition hash)
        if status == "running" and n.state in S.ACTIVE:
            n.run = Attempt(**dict(zip(COLUMNS, values)))


def _native(job_id):
    """A pid or job id; not the placeholder a Slurm task has before sbatch answered."""
    return None if job_id is None or str(job_id).startswith("submitting:") else str(job_id)


def _executer(n) -> str:
    if n.conf is not None and n.conf.is_remote:
        return "remote"
    return "slurm" if n.executer_type == "slurm" else "process"


_MEM = re.compile(r"^(\d+(?:\.\d+)?)([KMGT]?)B?$", re.I)
_UNITS = {"": 1 << 20, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}  # sbatch: MB by default


def requested(conf) -> dict:
    """What a Slurm task asks for (--cpus-per-task, --mem, --time of its TaskConf), for the
    report's used-vs-requested: {"req_cpus", "req_mem" (bytes), "req_time" (s)}."""
    out: dict = {}
    words = " ".join(getattr(conf, "sbatch_options", None) or ()).replace("=", " ").split()
    for name, value in zip(words, words[1:]):
        if name == "--mem":
            m = _MEM.match(value)
            if m:
                out["req_mem"] = int(float(m.group(1)) * _UNITS[m.group(2).upper()])
        elif name in ("--time", "-t"):
            secs = slurm_time_seconds(value)
            if secs is not None:
                out["req_time"] = secs
        elif name in ("--cpus-per-task", "-c") and value.isdigit():
            out["req_cpus"] = int(value)
    return out
