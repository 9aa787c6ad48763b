"""Slurm: ready tasks become job arrays, one sbatch per TaskConf and MaxArraySize chunk; one
squeue per polling round covers every job of the instance (they share a job name).

A task's own state file says when it completed or failed; squeue says what happened to a job
whose launcher could not report: cancelled (killed.N), time limit (timed-out.N), node failure,
or a job that vanished from the queue."""
from __future__ import annotations

import logging
import os
import subprocess
import time
from dataclasses import dataclass

from ..digest import sha1
from ..errors import DryPipeError
from ..state import statefile
from ..state import states as S
from . import slurm_text as st
from .base import Ended, Executor

log = logging.getLogger("drypipe.slurm")
DEFAULT_SLEEP_SCHEDULE = (0.0, 1.0, 3.0, 5.0, 10.0, 15.0, 20.0)
SQUEUE_EVERY = 5.0  # at most one squeue per this many seconds: the controller is shared
JUST_SUBMITTED = 5.0  # a job submitted this recently and not in squeue yet is not "vanished"


def run_command(argv: list[str], cwd: str | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """The one place DryPipe runs a Slurm command (tests and benchmarks count these)."""
    try:
        return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError as e:
        raise DryPipeError(f"{argv[0]}: command not found (is this a Slurm login node?)") from e


def job_name(instance_dir: str) -> str:
    """All jobs of an instance share this name: one squeue --name sees them all."""
    return "drypipe-" + sha1(os.path.realpath(instance_dir).encode()).hexdigest()[:10]


@dataclass
class SlurmEnded(Ended):
    slurm_state: str | None = None
    reason: str | None = None


class SlurmExecutor(Executor):
    """Slurm on this host. Submit = sbatch_array (one array per TaskConf and chunk, planned by
    scheduler/slurm_tasks or scheduler/arrays); poll; cancel = scancel; watch = recover."""
    name = "slurm"

    def __init__(self, instance_dir: str, sleep_schedule=DEFAULT_SLEEP_SCHEDULE, runner=run_command):
        self.instance_dir = instance_dir
        self.job_name = job_name(instance_dir)
        self.sleep_schedule = tuple(sleep_schedule) or DEFAULT_SLEEP_SCHEDULE
        self.run = runner
        self.jobs: dict[str, str] = {}  # task key -> job id ('123' or '123_4')
        self.submitted_at: dict[str, float] = {}  # task key -> when its job was submitted (epoch)
        self._max_array: int | None = None
        self._poll_index = 0
        self._next_poll = 0.0
        self._last_squeue = float("-inf")
        self.calls = {"sbatch": 0, "squeue": 0, "sacct": 0}
        self._no_accounting = os.environ.get("DRYPIPE_SACCT", "1") == "0"

    @property
    def running(self) -> int:
        return len(self.jobs)

    def capacity(self) -> int:
        return 1 << 30  # Slurm queues: the cluster decides what runs

    # -- submission ----------------------------------------------------------------------
    def max_array_size(self) -> int:
        if self._max_array is None:
            res = self.run(["scontrol", "show", "config"])
            self._max_array = st.max_array_size(st.parse_scontrol_config(res.stdout)) if res.returncode == 0 \
                else 1001
        return self._max_array

    def sbatch_array(self, conf, array_dir: str, elements: list[tuple[int, str]],
                     limit: int | None = None) -> list[str]:
        """Submit the elements (index in task-keys.tsv, task key) of an array dir, at most
        `limit` running at once; returns their job ids."""
        job = self._sbatch(array_sbatch_argv(self.instance_dir, array_dir, conf, [i for i, _ in elements], limit))
        with open(os.path.join(array_dir, "job-id"), "a") as f:
            f.write(job + "\n")
        ids = [f"{job}_{i}" for i, _ in elements]
        for (_, key), jid in zip(elements, ids):
            self.watch(key, jid)
        self._poll_index = 0
        self._next_poll = time.monotonic()
        return ids

    def sbatch_argv_for_task(self, conf, key: str, wait: bool = False) -> list[str]:
        rel = f".drypipe/{key}"
        return st.sbatch_argv(f"{rel}/sbatch-launcher.sh", job_name=self.job_name, output=f"{rel}/slurm.out",
                              account=conf.slurm_account, options=conf.sbatch_options, wait=wait)

    def submit_task(self, conf, key: str, wait: bool = False) -> str:
        job = self._sbatch(self.sbatch_argv_for_task(conf, key, wait))
        self.watch(key, job)
        return job

    def _sbatch(self, argv: list[str]) -> str:
        self.calls["sbatch"] += 1
        res = self.run(argv, cwd=self.instance_dir)
        if res.returncode != 0 and "--wait" not in argv:
            lines = [line.strip() for line in (res.stderr or res.stdout).splitlines()
                     if line.strip() and not line.startswith('Try "sbatch --help"')]
            raise DryPipeError("sbatch failed: " + ("; ".join(lines) or f"exit status {res.returncode}"))
        try:
            return st.parse_sbatch_parsable(res.stdout)
        except ValueError as e:
            raise DryPipeError(f"sbatch: {e}; stderr: {res.stderr.strip()}") from e

    def recover_jobs(self, pending: dict[str, tuple[str, int]]) -> dict[str, str]:
        """Job ids of tasks whose array was (maybe) submitted by an orchestrator that died before
        it recorded them. pending: key -> (array dir relative to the instance, index), as the
        task's `submitting:` job id says. From the array dir's job-id file, else from squeue by
        the array's --comment (its dir name); a task whose job is found nowhere is absent."""
        jobs: dict[str, str | None] = {}
        by_comment = None
        found = {}
        for key, (rel, i) in pending.items():
            if rel not in jobs:
                try:
                    with open(os.path.join(self.instance_dir, rel, "job-id")) as f:
                        jobs[rel] = (f.read().split() or [None])[-1]
                except FileNotFoundError:
                    if by_comment is None:
                        res = self.run(st.squeue_comment_argv(self.job_name))
                        by_comment = st.parse_squeue_comments(res.stdout) if res.returncode == 0 else {}
                    jobs[rel] = by_comment.get(os.path.basename(rel))
            if jobs[rel]:
                found[key] = f"{jobs[rel]}_{i}"
        return found

    def watch(self, key: str, job_id: str, submitted_at: float | None = None) -> bool:
        """Watch a job; submitted_at (epoch): when it was submitted (default: now), since squeue
        may not list a job in the first instant after sbatch returned."""
        self.jobs[key] = job_id
        self.submitted_at[key] = time.time() if submitted_at is None else submitted_at
        return True

    def cancel(self, keys) -> None:
        job_ids = [self.jobs[k] for k in keys if k in self.jobs]
        if job_ids:
            self.run(["scancel", *job_ids])

    def account(self, job_ids: list[str]) -> dict[str, dict]:
        """What finished jobs used, from sacct: ONE call for all of them; {} without accounting
        (sacct fails, e.g. no slurmdbd: not asked again in this run)."""
        if not job_ids or self._no_accounting:
            return {}
        self.calls["sacct"] += 1
        try:
            res = self.run(st.sacct_argv(job_ids), timeout=60)
        except (OSError, subprocess.SubprocessError) as e:
            res = None
            log.info("sacct: %s", e)
        if res is None or res.returncode != 0:
            self._no_accounting = True
            log.info("sacct unavailable (%s): no Slurm accounting figures in this run",
                     (res.stderr.strip() if res is not None else "") or "no answer")
            return {}
        return st.parse_sacct(res.stdout)

    # -- polling ------------------------------------------------------------------------------
    def next_poll_in(self) -> float:
        return max(0.0, self._next_poll - time.monotonic())

    def poll(self, timeout: float = 0.0, force: bool = False) -> list[SlurmEnded]:
        """When due: the tasks whose job is over. Their state files say so for tasks that
        completed (no controller call); one squeue for the whole instance, at most every
        SQUEUE_EVERY seconds, settles the others (failed: was it OUT_OF_MEMORY? cancelled, time
        limit, vanished)."""
        if not self.jobs or (not force and time.monotonic() < self._next_poll):
            return []
        ended, unsettled = [], {}
        for key, jid in list(self.jobs.items()):
            name = statefile.read(os.path.join(self.instance_dir, ".drypipe", key))
            if name == S.COMPLETED:
                del self.jobs[key]
                self.submitted_at.pop(key, None)
                ended.append(SlurmEnded(key, None))
            else:  # running, pending, or killed.N (a cancel, or a time limit?): ask Slurm
                unsettled[key] = jid
        if unsettled and (force or time.monotonic() - self._last_squeue >= SQUEUE_EVERY):
            ended += self._squeue(unsettled)
        self._schedule(changed=bool(ended))
        return ended

    def _squeue(self, unsettled: dict[str, str]) -> list[SlurmEnded]:
        self.calls["squeue"] += 1
        self._last_squeue = time.monotonic()
        res = self.run(st.squeue_argv(self.job_name))
        if res.returncode != 0:
            log.warning("squeue failed (%s); will retry", res.stderr.strip())
            return []
        queue = st.parse_squeue(res.stdout)
        ended = []
        for key, jid in unsettled.items():
            job = queue.get(jid)
            outcome = st.outcome(job[0]) if job else None
            just_submitted = time.time() - self.submitted_at.get(key, 0.0) < JUST_SUBMITTED
            if (outcome is not None and outcome != "active") or (job is None and not just_submitted):
                del self.jobs[key]
                self.submitted_at.pop(key, None)
                ended.append(SlurmEnded(key, None, slurm_state=job[0] if job else "VANISHED", reason=job[1] if job else None))
        return ended

    def _schedule(self, changed: bool) -> None:
        self._poll_index = 0 if changed else min(self._poll_index + 1, len(self.sleep_schedule) - 1)
        self._next_poll = time.monotonic() + max(self.sleep_schedule[self._poll_index], 0.5)


def array_sbatch_argv(instance_dir: str, array_dir: str, conf, indices: list[int],
                      limit: int | None = None) -> list[str]:
    """sbatch for the elements `indices` of an array dir, run from the instance dir (here or on a
    remote login node: all paths are relative to it)."""
    rel = os.path.relpath(array_dir, instance_dir)
    return st.sbatch_argv(f"{rel}/array.sh", job_name=job_name(instance_dir), output=f"{rel}/slurm-%a.out",
                          account=conf.slurm_account, options=conf.sbatch_options,
                          array=st.array_spec(0, limit, indices), comment=os.path.basename(rel))


PENDING = "submitting:"


def pending_job_id(array_rel: str, index: int) -> str:
    """The job id a task carries between its launch and sbatch's answer: where to find its job."""
    return f"{PENDING}{array_rel}:{index}"


def parse_pending_job_id(job_id: str | None) -> tuple[str, int] | None:
    """(array dir relative to the instance, index) of a pending job id; None for a real one."""
    if not job_id or not job_id.startswith(PENDING):
        return None
    rel, _, index = job_id[len(PENDING):].rpartition(":")
    return rel, int(index)


def write_array_dir(instance_dir: str, array_dir: str, items: list[tuple[str, int]]) -> None:
    """task-keys.tsv ('key<TAB>start step', line i = array index i) and array.sh."""
    os.makedirs(array_dir, exist_ok=True)
    rel = os.path.relpath(array_dir, instance_dir)
    tmp = os.path.join(array_dir, "task-keys.tsv.tmp")
    with open(tmp, "w") as f:
        f.write("".join(f"{k}\t{s}\n" for k, s in items))
    os.replace(tmp, os.path.join(array_dir, "task-keys.tsv"))
    with open(os.path.join(array_dir, "array.sh"), "w") as f:
        f.write(st.render_array_script(f"{rel}/task-keys.tsv"))


def read_array_keys(array_dir: str) -> list[tuple[str, int]]:
    with open(os.path.join(array_dir, "task-keys.tsv")) as f:
        return [(k, int(s or 0)) for k, s in (line.rstrip("\n").split("\t") for line in f if line.strip())]


def ended_state(state_file: str | None, ended: SlurmEnded, step: int | None) -> tuple[str, int | None, str | None]:
    """The DryPipe state of a Slurm task whose job is over: (state, step, message)."""
    try:
        base, st_step = S.parse(state_file) if state_file else (S.LAUNCHED, None)
    except ValueError:
        base, st_step = S.LAUNCHED, None
    n = st_step if st_step is not None else (step or 0)
    outcome = st.outcome(ended.slurm_state) if ended.slurm_state and ended.slurm_state != "VANISHED" else None
    if base == S.COMPLETED:
        return S.COMPLETED, None, None
    if outcome == "timed-out":
        return S.TIMED_OUT, n, f"Slurm job hit its time limit ({ended.slurm_state})"
    if outcome == "killed":
        return S.KILLED, n, f"Slurm job {ended.slurm_state.lower()}"
    if ended.slurm_state == "OUT_OF_MEMORY":  # whatever its step said: killed for exceeding --mem
        return S.FAILED, n, "Slurm job ran out of memory (OUT_OF_MEMORY): it used more than its --mem"
    if base in S.FAILURES:
        return base, n, None
    if ended.slurm_state == "VANISHED":
        return S.FAILED, n, "Slurm job vanished from the queue without reporting"
    return S.FAILED, n, f"Slurm job {ended.slurm_state} ({ended.reason}) without the task reporting"
