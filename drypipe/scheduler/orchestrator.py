"""The orchestrator: the only writer of an instance's database.

One loop: (re)generate the DAG when a wait it was blocked on can now pass, launch ready
tasks up to the executors' capacity, block until a task ends (no sleeping on a schedule),
feed what the task reported to the state machine, and persist each round in one transaction.

Every state change goes through `fire`, which applies one event of the state machine
(state/machine.py) and records it; crash recovery and the ingestion of what tasks report live
in scheduler/recovery.py, restarts in scheduler/restarts.py."""
from __future__ import annotations

import collections
import fnmatch
import logging
import os
import time

from ..dsl.pipeline import Pipeline
from ..errors import DryPipeError
from ..executors.local import LocalExecutor
from ..executors.remote import RemoteExecutor
from ..executors.slurm import DEFAULT_SLEEP_SCHEDULE, SlurmExecutor, parse_pending_job_id
from ..state import db, machine, statefile
from ..state import states as S
from ..state.lock import InstanceLock
from ..state.store import Store, now
from . import attempts, changes, generation, recovery, remote_tasks, restarts, slurm_tasks
from .graph import Node, TaskGraph
from .result import NullReporter, RunResult, unsatisfied_waits
from .materialize import Materializer, ensure_instance_dir, restrict_umask, task_dir

POLL_RUNNING_EVERY = 2.0
MIRROR_EVERY = 0.1  # the state files of the local tasks this orchestrator forked lag at most this
# What a round only observed (ends, started steps, the tasks they made ready) may wait this long
# for the next round's commit while tasks run: a crash loses none of it (it is in the tasks'
# logs, ingested again by the next run); a round that launches commits before any spawn.
COMMIT_EVERY = 0.05
log = logging.getLogger("drypipe.orchestrator")


class Orchestrator:
    """Drives one instance. With dry_run, it reads the instance and computes what would happen,
    and writes nothing: no database change, no file, no lock."""

    def __init__(self, instance_dir: str, pipeline: Pipeline | None = None, generator_spec: str | None = None,
                 max_parallel: int | None = None, reporter=None, sleep_schedule=None, dry_run: bool = False,
                 local_pool=None, stop=None, defer_links: bool = False):
        """local_pool: local task slots shared with other instances (executors/slots.py);
        stop: a threading.Event that ends run() without touching what runs (drypipe service);
        defer_links: link the loaded graph only if something needs it (`prepare`: 0.1 s of
        preparing 100k tasks again, which needs none)."""
        self.instance_dir = os.path.abspath(instance_dir)
        self.dry_run = dry_run
        self.defer_links = defer_links
        self.pipeline = pipeline
        self.reporter = reporter or NullReporter()
        if dry_run:
            self.lock = None
            self.db_path = db.open_path(self.instance_dir, create=False, upgrade=False) \
                if os.path.exists(db.db_path(self.instance_dir)) else None
        else:
            restrict_umask()
            ensure_instance_dir(self.instance_dir)
            self.lock = InstanceLock(self.instance_dir).acquire()
            self.db_path = None
        try:
            self._open(pipeline, generator_spec, max_parallel, sleep_schedule, local_pool, stop)
        except BaseException:
            self.close()  # a service goes on: leave the instance unlocked, its DB closed
            raise

    def _open(self, pipeline, generator_spec, max_parallel, sleep_schedule, local_pool, stop) -> None:
        dry_run = self.dry_run
        if not dry_run:
            self.db_path = db.open_path(self.instance_dir, create=True)
        self.store = Store(self.db_path, dry_run=dry_run)
        self._mirrors: dict[str, tuple[Node, str]] = {}  # state files to write after the next commit
        self._committed_at = 0.0  # (time.monotonic() of the last commit)
        self.ramp = False  # the last round launched only the first few it could (launch_round)
        self.store.on_commit = self._mirror_committed
        self.graph = TaskGraph(self.instance_dir)
        self.meta = self.store.load_meta()
        if pipeline is not None:
            code_dir, containers_dir = pipeline.pipeline_code_dir, pipeline.containers_dir
            self.store.set_meta("pipeline_code_dir", code_dir)
            self.store.set_meta("containers_dir", containers_dir or "")
            if generator_spec:
                self.store.set_meta("generator", generator_spec)
        else:
            code_dir = self.meta.get("pipeline_code_dir") or os.getcwd()
            containers_dir = self.meta.get("containers_dir") or None
        self.materializer = Materializer(self.instance_dir, code_dir, containers_dir, self.graph)
        runtime = self.materializer.runtime_path if dry_run else self.materializer.install_runtime()
        self.local = LocalExecutor(runtime, max_parallel, pool=local_pool)
        self.stop = stop
        self.slurm = SlurmExecutor(self.instance_dir, sleep_schedule or DEFAULT_SLEEP_SCHEDULE)
        self.remote = RemoteExecutor(self.instance_dir, sleep_schedule or DEFAULT_SLEEP_SCHEDULE)
        self.deferred: list[tuple[float, Node]] = []  # remote tasks waiting for their host
        self.spent_cgroups: list[str] = []  # memory cgroups of ended attempts, to remove
        self.spent_scratch: list[str] = []  # keys of completed tasks whose empty scratch dir goes (spare)
        self.array_seq: int | None = None  # the next .drypipe/_arrays/<n>
        self.unreachable: list[str] = []
        self.ready: collections.deque[Node] = collections.deque()
        self.blocked_waits: list = []
        self.generator_error: str | None = None
        self.redefined: set[str] = set()  # keys whose definition the generator changed
        self.changes = changes.Changes()  # completed tasks out of date (scheduler/changes.py)
        self.glob_waits: list[list] = []  # per blocked wait: [keys it needs, satisfiable]
        self.regenerate = pipeline is not None
        self.any_nonlocal = False  # any Slurm or remote task in the graph?
        self.next_id = 1
        with generation.gc_paused():
            recovery.load(self)

    # -- the state machine ---------------------------------------------------------------------
    def fire(self, n: Node, event: str, at: float | None = None, step: int | None = None,
             message: str | None = None, mirror: bool = True) -> None:
        """Apply one event of the state machine to n and record it (committed at the next
        flush, with every other change of the round). With mirror, the task dir's state file
        (where the task has one) is made to say the new state once it is committed, or at once
        for `waiting` (the state before, `ready` or an ending, is what a load repairs)."""
        self.graph.link_deferred()  # (if any were deferred: n.pending, and what the event does downstream)
        waiting = event in ("reset", "restart-at-step", "restart", "retry") and n.pending > 0
        before = n.state_name
        machine.fire(n, event, now() if at is None else at, self._record, step=step, message=message,
                     waiting=waiting)
        if n.state == S.READY and event != "launch-lost":
            self.ready.append(n)  # a stale entry (blocked since) is skipped at launch
        if mirror and not self.dry_run:
            if n.state == S.WAITING:
                self.mirror(n, before)
            elif n.key not in self._mirrors:
                self._mirrors[n.key] = (n, before)  # (what its file says now, most likely)

    def _mirror_committed(self) -> None:
        self._committed_at = time.monotonic()
        mirrors, self._mirrors = self._mirrors, {}
        for n, before in mirrors.values():
            self.mirror(n, before)

    def _record(self, n: Node, state: str, step, at: float) -> None:
        self.store.touch(n)
        self.store.transition(n, state, step, at)
        attempts.record(self, n, state, step, at)

    def mirror(self, n: Node, current: str | None = None) -> None:
        """Make the task dir's one state file name n's state (when the task has a dir). current:
        the state its file most likely names (renamed at once; else the dir is scanned)."""
        try:
            statefile.write(task_dir(self.instance_dir, n.key), n.state_name, current)
        except FileNotFoundError:
            pass  # never materialized: the task dir is written at launch
        except OSError as e:  # the DB stays the truth; the next run repairs the file
            log.warning("task %s: cannot write its state file state.%s: %s", n.key, n.state_name, e.strerror)

    # -- generation -------------------------------------------------------------------------
    def generate(self) -> list[Node]:
        """Run the DAG generator once; register the tasks it yields for the first time."""
        return generation.generate_once(self)

    def on_completed(self, n: Node) -> None:
        """n just completed: its downstream whose every upstream completed become ready, and
        the generator is re-run when a wait it was blocked on can now pass."""
        for d in self.graph.completed(n):
            self.fire(d, "unblock")
        for w in self.glob_waits:
            need = w[0]
            if n.key in need:
                need.discard(n.key)
                if not need and w[1]:
                    self.regenerate = True

    # -- running ------------------------------------------------------------------------------
    def prepare(self, until: str | None = None) -> dict[str, int]:
        """Generate the tasks and write the task dir of every ready task (its `task` script can
        be run by hand), except those whose key matches `until`; nothing is launched."""
        if self.pipeline is not None:
            self.generate()
        self.store.flush()
        if not self.dry_run:
            for n in self.ready:
                if n.launched_at is None and n.state == S.READY and not (until and fnmatch.fnmatchcase(n.key, until)) \
                        and (n.key in self.redefined or not os.path.exists(os.path.join(
                            task_dir(self.instance_dir, n.key), "task"))):
                    self.materializer.materialize(n, S.READY, slurm=n.executer_type == "slurm")
        return self.graph.counts()

    def run(self, until: str | None = None) -> RunResult:
        held: list[str] = []
        if not self.dry_run:
            self.local.warm()  # (its start overlaps the generation)
        if self.regenerate and self.pipeline is not None:
            self.generate()  # before any output: a broken generator gets a one-line error
        self.reporter.started(self)
        last_poll = last_mirror = time.monotonic()
        stopped = False
        try:
            while True:
                if self.stop is not None and self.stop.is_set():
                    stopped = True  # what runs runs on; the next orchestrator re-attaches to it
                    break
                if self.regenerate and self.pipeline is not None and self.generator_error is None:
                    try:
                        new = self.generate()
                    except DryPipeError as e:
                        # the DAG known so far is valid: what runs (and is ready) goes on
                        self.generator_error = str(e)
                        log.error("the generator failed; no new task will be generated: %s", e)
                        new = []
                    if new:
                        self.reporter.generated(self, len(new))
                remote_tasks.release_deferred(self)
                self.launch_round(until, held)  # one commit per round, before any spawn
                self.reporter.progress(self)
                if not (self.local.running or self.slurm.running or self.remote.running or self.deferred):
                    if self.regenerate and self.pipeline is not None and self.generator_error is None:
                        continue
                    if self.local.pool is not None and any(n.state == S.READY for n in self.ready):
                        self.local.pool.wait(POLL_RUNNING_EVERY)  # other instances hold every slot
                        continue
                    break
                self.unreachable = remote_tasks.stranded(self)
                if self.unreachable:
                    break
                self.wait_and_ingest()
                if time.monotonic() - last_poll >= POLL_RUNNING_EVERY:
                    recovery.poll_running(self)
                    last_poll = last_mirror = time.monotonic()
                elif self.local.launched_here and time.monotonic() - last_mirror >= MIRROR_EVERY:
                    recovery.mirror_running(self)
                    last_mirror = time.monotonic()
        except KeyboardInterrupt:
            self.interrupt()
            raise
        finally:
            self.local.shutdown(kill=False)
            self.remove_spent()
            self.unmake_premade()
            self.store.flush()
            self.store.close()
        result = RunResult(self.graph, held, unsatisfied_waits(self), self.unreachable, self.generator_error,
                           self.changes.out_of_date)
        result.stopped = stopped
        self.reporter.finished(self, result)
        return result

    def mark_launched(self, n: Node, slurm: bool = False, t: float | None = None) -> str:
        """Write n's task dir with state `launched` and fire `launch` (persisted at the next
        flush, before the process or job exists); return its `task` script."""
        t = t or now()
        script = self.materializer.materialize(n, S.LAUNCHED, slurm=slurm)
        self.fire(n, "launch", at=t, mirror=False)
        n.log_offset = 0 if self.materializer.fresh else recovery.log_size(os.path.dirname(script))
        return script

    def _mark_launched_or_fail(self, n: Node, slurm: bool, t: float) -> str | None:
        try:
            return self.mark_launched(n, slurm=slurm, t=t)
        except OSError as e:
            self.fail_unlaunched(n, f"cannot write its task dir .drypipe/{n.key}: {e.strerror}")
            return None

    def fail_unlaunched(self, n: Node, message: str) -> None:
        """The launch of n was impossible (task dir unwritable, sbatch refused, ...): failed at
        its start step, retried like any failure."""
        if n.state == S.READY:
            self.fire(n, "launch", mirror=False)
        if parse_pending_job_id(n.job_id):
            n.job_id = None  # its job was never submitted
        self.fire(n, "failed", step=n.start_step, message=message)
        self.reporter.task_ended(self, n)

    def set_job_id(self, n: Node, job_id: str) -> None:
        n.job_id, n.start_step = job_id, 0
        self.store.touch(n)
        attempts.set_native_id(self, n)
        if n.executer_type == "slurm":
            _write_text(os.path.join(task_dir(self.instance_dir, n.key), "slurm-job"), job_id + "\n")

    def remove_spent(self) -> None:
        """What ended attempts left: their cgroups (removed), their empty scratch dirs (kept for
        later tasks, Materializer.recycle_scratch). Done while the spawner forks the launches
        their endings allowed, or at the next wait: off a dependent task's way."""
        if self.spent_cgroups:
            attempts.remove_spent_cgroups(self)
        if self.spent_scratch:
            self.remove_spent_scratch()

    def remove_spent_scratch(self) -> None:
        """The empty scratch dirs of local tasks that completed; not that of a task launched
        again since."""
        spent, self.spent_scratch = self.spent_scratch, []
        recycle = self.materializer.recycle_scratch
        for key in spent:
            if self.graph.nodes[key].state == S.COMPLETED:
                recycle(key)

    def _may_defer_commit(self) -> bool:
        """A round that launches nothing, with local tasks running, a commit less than
        COMMIT_EVERY ago: its changes go with the next round's commit."""
        return bool(self.local.running) and time.monotonic() - self._committed_at < COMMIT_EVERY

    def wait_and_ingest(self) -> None:
        """Block until a local task ends or the next Slurm poll is due; ingest what ended."""
        self.remove_spent()
        timeout = MIRROR_EVERY if self.local.launched_here else POLL_RUNNING_EVERY
        if self.ramp and self.ready:
            timeout = 0.0  # (the rest of the first launch)
        if self.store.has_pending:  # a deferred commit is due by then
            timeout = min(timeout, max(0.0, self._committed_at + COMMIT_EVERY - time.monotonic()))
        if self.slurm.running:
            timeout = min(timeout, self.slurm.next_poll_in())
        if self.remote.running:
            timeout = min(timeout, self.remote.next_poll_in())
        if self.deferred:
            timeout = min(timeout, max(0.0, min(w for w, _ in self.deferred) - time.monotonic()))
        if self.local.running:
            ended = self.local.poll(timeout)
        else:
            time.sleep(timeout)  # only Slurm jobs run: wait for the next poll
            ended = []
        for e in ended:
            recovery.ingest(self, self.graph.nodes[e.key], e.returncode, reaped=e.usage)
        ended = [(self.graph.nodes[e.key], e) for e in self.slurm.poll()]
        runs = [n.run for n, _ in ended]
        for n, e in ended:
            recovery.ingest(self, n, None, slurm=e)
        if ended:
            attempts.add_accounting(self, runs)
        remote_tasks.poll(self)

    def launch_round(self, until: str | None = None, held: list[str] | None = None) -> None:
        """Materialize ready tasks up to capacity, commit the round, then start them:
        local ones through the spawner, Slurm ones as one array per TaskConf and chunk."""
        held = [] if held is None else held
        batch, slurm_batch, remote_batch = [], [], []
        t = now()
        ready = self.ready
        if self.any_nonlocal:  # Slurm and remote tasks are not bound by the local capacity
            local = collections.deque()
            for n in ready:
                (local if n.executer_type != "slurm" and not n.conf.is_remote else slurm_batch).append(n)
            ready = self.ready = local
        capacity = self.local.capacity(len(ready)) if ready else 0
        # the first launch is small, so that tasks start at once; the rest follows without a wait
        self.ramp = ramp = self.local.pool is None and not self.local.running and capacity > 2 * self.local.max_parallel
        if ramp:
            capacity = 2 * self.local.max_parallel
        while capacity > 0 and ready:
            n = ready.popleft()
            if n.state != S.READY:
                continue  # went back to waiting (an upstream restarted) since it was queued
            if until and fnmatch.fnmatchcase(n.key, until):
                held.append(n.key)
                continue
            script = self._mark_launched_or_fail(n, False, t)
            if script:
                batch.append((n, script))
                capacity -= 1
        nonlocal_tasks, slurm_batch = slurm_batch, []
        for n in nonlocal_tasks:
            if n.state != S.READY:
                continue
            if until and fnmatch.fnmatchcase(n.key, until):
                held.append(n.key)
                continue
            if self._mark_launched_or_fail(n, n.executer_type == "slurm", t):
                # a remote process, or Slurm on a remote login node; or Slurm here
                (remote_batch if n.conf.is_remote else slurm_batch).append(n)
        planned = slurm_tasks.plan(self, slurm_batch) if slurm_batch else []
        if batch or slurm_batch or remote_batch or not self._may_defer_commit():
            self.store.flush()  # the DB says `launched` before the process (or job) exists
        if planned:
            slurm_tasks.submit(self, planned)
        if remote_batch:
            remote_tasks.launch(self, remote_batch)
            self.store.flush()
        if not batch:
            return
        pids = self.local.launch_many([(n.key, script, n.start_step) for n, script in batch],
                                      meanwhile=self.remove_spent)  # while the spawner forks
        for (n, _), pid in zip(batch, pids):
            if log.isEnabledFor(logging.DEBUG):
                log.debug("launched %s (pid %s, from step %d)", n.key, pid, n.start_step)
            n.job_id = pid
            n.start_step = 0
            self.store.touch(n)
            attempts.set_native_id(self, n)
        if not self.dry_run:
            self.premake_next([n for n, _ in batch])

    def unmake_premade(self) -> None:
        """The task dirs written ahead of tasks that were not launched after all (an upstream
        failed, or the run stopped): removed, as if never written."""
        nodes = self.graph.nodes
        self.materializer.unmake([k for k in self.materializer.premade
                                  if nodes[k].state == S.WAITING and nodes[k].launched_at is None])

    def premake_next(self, launched: list[Node]) -> None:
        """While the tasks just launched run: write ahead the task dirs of the local tasks that
        wait for nothing else (materialize.py, premake), at most 2 x -j of them."""
        budget = 2 * self.local.max_parallel
        for n in launched:
            for d in n.downstream:
                if budget <= 0:
                    return
                if d.state == S.WAITING and d.pending == 1 and d.executer_type != "slurm" and not d.conf.is_remote:
                    budget -= 1
                    try:
                        self.materializer.premake(d)
                    except OSError:
                        self.materializer.forget(d.key)  # (its launch writes it all, or says why not)

    def interrupt(self) -> None:
        """Ctrl-C: stop the local tasks and record how they ended."""
        self.local.kill_all()
        deadline = time.monotonic() + 10
        while self.local.running and time.monotonic() < deadline:
            for e in self.local.wait(0.5):
                recovery.ingest(self, self.graph.nodes[e.key], e.returncode, reaped=e.usage)

    # -- restarts (scheduler/restarts.py) ------------------------------------------------------
    def retry_failed(self, reset: bool) -> list[Node]:
        return restarts.retry_failed(self, reset)

    def restart_tasks(self, keys, at_step: int | None = None, reset: bool = False) -> list[Node]:
        return restarts.restart_tasks(self, keys, at_step=at_step, reset=reset)

    def run_tasks(self, keys, wait: bool = True) -> RunResult | None:
        return restarts.run_tasks(self, keys, wait=wait)

    def close(self) -> None:
        """Release the instance (its lock and DB connections); also what a failed __init__ opened."""
        if hasattr(self, "spent_scratch"):
            self.remove_spent()  # whatever ingested the last endings (run, run_tasks, load)
            self.unmake_premade()
        for part in ("local", "remote", "store"):
            if hasattr(self, part):
                getattr(self, part).close()
        if self.lock is not None:
            self.lock.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _write_text(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)

__all__ = ["Orchestrator", "RunResult", "DryPipeError"]
