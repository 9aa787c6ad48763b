"""The orchestrator: the only writer of an instance's database.

One loop: (re)generate the DAG when a wait it was blocked on can now pass, launch ready
tasks up to the executors' capacity, block until a task ends (no sleeping on a schedule),
ingest what the task reported through its state file, and persist each round in one
transaction."""
from __future__ import annotations

import collections
import contextlib
import fnmatch
import gc
import json
import logging
import os
import time

from ..conf import TaskConf
from ..dsl.pipeline import Pipeline, generate
from ..errors import DryPipeError, InstanceError, InvalidPipeline
from ..executors.local import LocalExecutor, running_launchers
from ..executors.remote import RemoteExecutor
from ..executors.slurm import DEFAULT_SLEEP_SCHEDULE, SlurmExecutor, ended_state
from . import remote_tasks, slurm_tasks
from ..runtime.render import parse_output_vars
from ..state import db, statefile
from ..state import states as S
from ..state.store import Store, dumps, now
from .graph import Node, TaskGraph
from .lock import InstanceLock
from .materialize import Materializer, task_dir
from .tasklog import attempt_offset, read_transitions

POLL_RUNNING_EVERY = 2.0
log = logging.getLogger("drypipe.orchestrator")


class RunResult:
    def __init__(self, graph: TaskGraph, held: list[str], unsatisfied_waits: list[str],
                 unreachable: list[str] | None = None):
        self.unreachable = unreachable or []
        self.counts = graph.counts()
        self.failed = [n for n in graph.nodes.values() if n.state in S.FAILURES]
        self.held = held
        self.unsatisfied_waits = unsatisfied_waits
        self.total = len(graph.nodes)
        held_set = set(held)
        self.waiting = [n for n in graph.nodes.values() if n.state in (S.WAITING, S.READY)
                        and n.key not in held_set]

    @property
    def ok(self) -> bool:
        """Every task completed, except those held back by --until and their downstream."""
        if self.failed or self.unsatisfied_waits or self.unreachable:
            return False
        return not self.waiting or bool(self.held)


class Orchestrator:
    def __init__(self, instance_dir: str, pipeline: Pipeline | None = None, generator_spec: str | None = None,
                 max_parallel: int | None = None, reporter=None, sleep_schedule=None):
        self.instance_dir = os.path.abspath(instance_dir)
        os.umask(os.umask(0) | 0o002)  # nothing DryPipe (or its tasks) creates is world-writable
        self.pipeline = pipeline
        self.reporter = reporter or NullReporter()
        _ensure_instance_dir(self.instance_dir)
        self.lock = InstanceLock(self.instance_dir).acquire()
        self.engine = db.open_db(self.instance_dir, create=True)
        self.store = Store(self.engine)
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
        self.local = LocalExecutor(self.materializer.install_runtime(), max_parallel)
        self.slurm = SlurmExecutor(self.instance_dir, sleep_schedule or DEFAULT_SLEEP_SCHEDULE)
        self.remote = RemoteExecutor(self.instance_dir, sleep_schedule or DEFAULT_SLEEP_SCHEDULE)
        self.deferred: list[tuple[float, Node]] = []  # remote tasks waiting for their host
        self.array_seq: int | None = None  # the next .drypipe/_arrays/<n>
        self.unreachable: list[str] = []
        self.ready: collections.deque[Node] = collections.deque()
        self.blocked_waits: list = []
        self._glob_waits: list[list] = []
        self._regenerate = pipeline is not None
        self._any_nonlocal = False  # any Slurm or remote task in the graph?
        self._next_id = 1
        with _gc_paused():
            self._load()

    # -- loading and crash recovery ------------------------------------------------------
    def _load(self) -> None:
        confs = {cid: TaskConf.from_dict(json.loads(js)) for cid, js in self.store.load_confs().items()}
        outputs = self.store.load_outputs()
        graph = self.graph
        for r in self.store.load_tasks():
            n = Node(r.id, r.key, r.state, r.step, r.executer_type, confs[r.conf_id], r.conf_id, r.spec)
            n.job_id, n.created_at, n.launched_at = r.job_id, r.created_at, r.launched_at
            n.started_at, n.ended_at, n.message = r.started_at, r.ended_at, r.message
            n.outputs = outputs.get(r.id)
            graph.add(n)
            if n.executer_type == "slurm" or n.conf.is_remote:
                self._any_nonlocal = True
            self._next_id = max(self._next_id, r.id + 1)
        for n in graph.nodes.values():
            if n.state != S.COMPLETED:
                graph.link(n)
                if n.state == S.READY:
                    self.ready.append(n)
        self._repair_state_files()
        active = [n for n in graph.nodes.values() if n.state in S.ACTIVE]
        if active:
            self._reattach(active)
        self.store.flush()

    def _repair_state_files(self) -> None:
        """The DB is the truth for tasks not running: make each launched-once task dir hold
        exactly its state file again (edited, deleted or duplicated by hand)."""
        for n in self.graph.nodes.values():
            if n.state in S.ACTIVE or n.launched_at is None:
                continue
            tdir = task_dir(self.instance_dir, n.key)
            name = n.state_name
            try:
                found = statefile.names(tdir)
            except FileNotFoundError:
                continue
            if found != [name]:
                log.warning("task %s: state files %s repaired to state.%s (the database's)", n.key,
                            found or "(none)", name)
                statefile.normalize(tdir, name)

    def _reattach(self, active: list[Node]) -> None:
        """Tasks the DB says are running (an earlier orchestrator died): watch those whose
        launcher still runs, ingest the others (relaunched if they never started)."""
        for n in [n for n in active if n.conf.is_remote]:  # the next poll of its host tells
            self.remote.watch(self.remote.host_for(n.conf), n.key,
                              n.job_id if n.executer_type == "slurm" else None)
        active = [n for n in active if not n.conf.is_remote]
        slurm = [n for n in active if n.executer_type == "slurm"]
        missing = [n.key for n in slurm if not n.job_id]
        recovered = self.slurm.recover_array_jobs(missing) if missing else {}
        for n in slurm:
            n.log_offset = attempt_offset(task_dir(self.instance_dir, n.key), n.launched_at) or \
                _log_size(task_dir(self.instance_dir, n.key))
            if not n.job_id and n.key in recovered:
                self.set_job_id(n, recovered[n.key])  # submitted, but died before recording it
            if n.job_id:
                self.slurm.watch(n.key, n.job_id)  # the next poll says whether it still runs
            else:
                self._ingest(n, None)
        active = [n for n in active if n.executer_type != "slurm"]
        launchers = running_launchers(self.instance_dir, self.materializer.runtime_path) if active else {}
        for n in active:
            # read this attempt's lines only: earlier attempts' were ingested by earlier runs
            n.log_offset = attempt_offset(task_dir(self.instance_dir, n.key), n.launched_at) or \
                _log_size(task_dir(self.instance_dir, n.key))
            pid = launchers.get(n.key)
            if pid is not None and self.local.attach(n.key, str(pid), task_dir(self.instance_dir, n.key)):
                if n.job_id != str(pid):
                    n.job_id = str(pid)
                    self.store.touch(n)
                continue
            self._ingest(n, None)

    # -- generation -------------------------------------------------------------------------
    def generate(self) -> list[Node]:
        """Run the DAG generator once; register the tasks it yields for the first time."""
        with _gc_paused():
            return self._generate()

    def _generate(self) -> list[Node]:
        self._regenerate = False
        gen = generate(self.pipeline, self.graph)
        graph, store = self.graph, self.store
        new: list[Node] = []
        t = now()
        code_dir = self.materializer.code_dir
        conf_cache: dict[int, int] = {}
        scripts_checked: set[str] = set()
        nodes = graph.nodes
        for key, task in gen.tasks.items():
            known = nodes.get(key)
            if known is not None:
                if known.state != S.COMPLETED and known.state not in S.ACTIVE:
                    self._update_definition(known, task)
                continue
            for s in task.steps:
                if s["kind"] == "script" and s["path"] not in scripts_checked:
                    if not os.path.isfile(os.path.join(code_dir, s["path"])):
                        raise InvalidPipeline(f"task {key!r}: calls({s['path']!r}): no such script in "
                                              f"$__pipeline_code_dir ({code_dir})")
                    scripts_checked.add(s["path"])
            conf = task.conf
            cached = conf_cache.get(id(conf))
            if cached is None:
                _check_supported(key, conf)
                cached = conf_cache[id(conf)] = store.conf_id(conf.to_json_key())
                if conf.executer_type == "slurm" or conf.is_remote:
                    self._any_nonlocal = True
            n = Node(self._next_id, key, S.WAITING, None, conf.executer_type, conf, cached, None,
                     task.spec())
            self._next_id += 1
            n.created_at = t
            new.append(n)
            nodes[key] = n
        for n in new:
            for i in n.spec["inputs"]:
                up = i.get("task")
                if up is not None and up not in nodes:
                    for m in new:
                        del nodes[m.key]
                    raise InvalidPipeline(f"task {n.key!r} consumes an output of task {up!r}, "
                                          "which the generator did not yield")
        ready = self.ready
        for n in new:
            if n.spec["inputs"]:
                graph.link(n)
            if n.pending == 0:
                n.state = S.READY
                ready.append(n)
            store.add_task(n, dumps(n.spec))
        self.blocked_waits = gen.blocked_waits
        self._index_glob_waits()
        log.info("generator yielded %d tasks, %d new; %d waits blocked", len(gen.tasks), len(new),
                 len(self.blocked_waits))
        return new

    def _update_definition(self, n: Node, task) -> None:
        """A task not run (or failed) whose definition changed in the generator: take the new one
        (a fixed snippet is what --restart-failed/--reset-failed should run)."""
        spec = task.spec()
        if spec == n.spec and task.conf == n.conf:
            return
        if {i.get("task") for i in spec["inputs"]} != {i.get("task") for i in n.spec["inputs"]}:
            log.warning("task %s: its inputs' upstream tasks changed in the generator; keeping the "
                        "recorded definition", n.key)
            return
        n._spec, n.spec_json = spec, None
        if task.conf != n.conf:
            n.conf, n.conf_id = task.conf, self.store.conf_id(task.conf.to_json_key())
        self.store.update_definition(n, dumps(spec))
        log.warning("task %s: definition changed in the generator; the new one will run", n.key)

    def _index_glob_waits(self) -> None:
        """For each blocked wait: the uncompleted tasks it needs, counted down on completions."""
        self._glob_waits = []
        for kind, items in self.blocked_waits:
            if kind == "keys":
                need = {k for k in items if self.graph.state_of(k) != S.COMPLETED}
                self._glob_waits.append([need, all(self.graph.is_known(k) for k in items)])
            else:
                need, satisfiable = set(), True
                for g in items:
                    keys = self.graph.keys_matching(g)
                    if not keys:
                        satisfiable = False
                    need.update(k for k in keys if self.graph.state_of(k) != S.COMPLETED)
                self._glob_waits.append([need, satisfiable])

    def _on_completed_for_waits(self, key: str) -> None:
        for w in self._glob_waits:
            need = w[0]
            if key in need:
                need.discard(key)
                if not need and w[1]:
                    self._regenerate = True

    # -- running ------------------------------------------------------------------------------
    def prepare(self) -> dict[str, int]:
        if self.pipeline is not None:
            self.generate()
        self.store.flush()
        return self.graph.counts()

    def run(self, until: str | None = None) -> RunResult:
        held: list[str] = []
        if self._regenerate and self.pipeline is not None:
            self.generate()  # before any output: a broken generator gets a one-line error
        self.reporter.started(self)
        last_poll = time.monotonic()
        try:
            while True:
                if self._regenerate and self.pipeline is not None:
                    try:
                        new = self.generate()
                    except DryPipeError:
                        self._interrupt()  # running local tasks are stopped and recorded
                        raise
                    if new:
                        self.reporter.generated(self, len(new))
                remote_tasks.release_deferred(self)
                self._launch(until, held)  # one commit per round, before any spawn
                self.reporter.progress(self)
                if not (self.local.running or self.slurm.running or self.remote.running or self.deferred):
                    if self._regenerate and self.pipeline is not None:
                        continue
                    break
                self.unreachable = remote_tasks.stranded(self)
                if self.unreachable:
                    break
                self._wait_and_ingest()
                if time.monotonic() - last_poll >= POLL_RUNNING_EVERY:
                    self._poll_running()
                    last_poll = time.monotonic()
        except KeyboardInterrupt:
            self._interrupt()
            raise
        finally:
            self.local.shutdown(kill=False)
            self.store.flush()
            self.store.close()
        result = RunResult(self.graph, held, self._unsatisfied_waits(), self.unreachable)
        self.reporter.finished(self, result)
        return result

    def mark_launched(self, n: Node, slurm: bool = False, t: float | None = None) -> str:
        """Write n's task dir with state `launched` (persisted at the next flush); its script."""
        t = t or now()
        script = self.materializer.materialize(n, S.LAUNCHED, slurm=slurm)
        n.state, n.step, n.launched_at, n.started_at, n.ended_at, n.message = \
            S.LAUNCHED, None, t, None, None, None
        n.log_offset = 0 if self.materializer.fresh else _log_size(os.path.dirname(script))
        self.store.touch(n)
        self.store.transition(n, S.LAUNCHED, None, t)
        return script

    def _mark_launched_or_fail(self, n: Node, slurm: bool, t: float) -> str | None:
        try:
            return self.mark_launched(n, slurm=slurm, t=t)
        except OSError as e:
            self._fail_unlaunched(n, f"cannot write its task dir .drypipe/{n.key}: {e.strerror}")
            return None

    def set_job_id(self, n: Node, job_id: str) -> None:
        n.job_id, n.start_step = job_id, 0
        self.store.touch(n)
        if n.executer_type == "slurm":
            _write_text(os.path.join(task_dir(self.instance_dir, n.key), "slurm-job"), job_id + "\n")

    def _wait_and_ingest(self) -> None:
        """Block until a local task ends or the next Slurm poll is due; ingest what ended."""
        timeout = POLL_RUNNING_EVERY
        if self.slurm.running:
            timeout = min(timeout, self.slurm.next_poll_in())
        if self.remote.running:
            timeout = min(timeout, self.remote.next_poll_in())
        if self.deferred:
            timeout = min(timeout, max(0.0, min(w for w, _ in self.deferred) - time.monotonic()))
        if self.local.running:
            ended = self.local.wait(timeout)
        else:
            time.sleep(timeout)  # only Slurm jobs run: wait for the next poll
            ended = []
        for e in ended:
            self._ingest(self.graph.nodes[e.key], e.returncode)
        for e in self.slurm.poll():
            self._ingest(self.graph.nodes[e.key], None, slurm=e)
        remote_tasks.poll(self)

    def _launch(self, until: str | None, held: list[str]) -> None:
        """Materialize ready tasks up to capacity, commit the round, then start them:
        local ones through the spawner, Slurm ones as one array per TaskConf and chunk."""
        capacity = self.local.capacity()
        batch, slurm_batch, remote_batch = [], [], []
        t = now()
        ready = self.ready
        if self._any_nonlocal:  # Slurm and remote tasks are not bound by the local capacity
            local = collections.deque()
            for n in ready:
                (local if n.executer_type != "slurm" and not n.conf.is_remote else slurm_batch).append(n)
            ready = self.ready = local
        while capacity > 0 and ready:
            n = ready.popleft()
            if until and fnmatch.fnmatchcase(n.key, until):
                held.append(n.key)
                continue
            script = self._mark_launched_or_fail(n, False, t)
            if script:
                batch.append((n, script))
                capacity -= 1
        nonlocal_tasks, slurm_batch = slurm_batch, []
        for n in nonlocal_tasks:
            if until and fnmatch.fnmatchcase(n.key, until):
                held.append(n.key)
                continue
            if self._mark_launched_or_fail(n, n.executer_type == "slurm", t):
                # a remote process, or Slurm on a remote login node; or Slurm here
                (remote_batch if n.conf.is_remote else slurm_batch).append(n)
        self.store.flush()  # the DB says `launched` before the process (or job) exists
        if slurm_batch:
            slurm_tasks.submit(self, slurm_batch)
        if remote_batch:
            remote_tasks.launch(self, remote_batch)
            self.store.flush()
        if not batch:
            return
        pids = self.local.launch_many([(n.key, script, n.start_step) for n, script in batch])
        for (n, _), pid in zip(batch, pids):
            if log.isEnabledFor(logging.DEBUG):
                log.debug("launched %s (pid %s, from step %d)", n.key, pid, n.start_step)
            n.job_id = pid
            n.start_step = 0
            self.store.touch(n)

    def _fail_unlaunched(self, n: Node, message: str) -> None:
        tdir = task_dir(self.instance_dir, n.key)
        try:
            statefile.write(tdir, S.format(S.FAILED, n.start_step))
        except OSError:
            pass  # the task dir itself is what failed
        n.state, n.step, n.message, n.ended_at = S.FAILED, n.start_step, message, now()
        self.store.touch(n)
        self.store.transition(n, S.FAILED, n.step, n.ended_at)
        self.reporter.task_ended(self, n)

    def _ingest(self, n: Node, returncode, slurm=None) -> None:
        """The task's process (or job) is over: take its final state from its state file
        (and, for a Slurm job, from what Slurm says happened to it)."""
        tdir = task_dir(self.instance_dir, n.key)
        transitions, n.log_offset, message = read_transitions(tdir, n.log_offset)
        if transitions and transitions[-1][1] in S.TERMINAL:  # logged right after its rename
            name = S.format(transitions[-1][1], transitions[-1][2])
        else:
            name = statefile.read(tdir)
        if slurm is not None:
            state, step, slurm_message = ended_state(name, slurm, n.step)
            new_name = S.format(state, step)
            if new_name != name:
                statefile.write(tdir, new_name, name)
                self.store.transition(n, state, step, now())
                name = new_name
            message = slurm_message or message
        for at, state, step in transitions:
            self.store.transition(n, state, step, at)
            if state == S.STEP_STARTED and n.started_at is None:
                n.started_at = at
        try:
            state, step = S.parse(name) if name else (S.LAUNCHED, None)
        except ValueError:
            state, step = S.LAUNCHED, None
        t = transitions[-1][0] if transitions else now()
        if state in S.ACTIVE:
            if state == S.LAUNCHED and attempt_offset(tdir, n.launched_at) is None:
                # the launcher never ran (orchestrator died between DB write and spawn): relaunch
                n.state, n.step = S.READY, None
                self.store.touch(n)
                self.ready.appendleft(n)
                return
            state, step, t = S.KILLED, step or 0, now()
            statefile.write(tdir, S.format(state, step), name)
            message = ("task process ended without reporting (killed, or the machine restarted)"
                       if returncode is None else f"task process ended with status {returncode} without reporting")
            self.store.transition(n, state, step, t)
        n.state, n.step, n.ended_at = state, step, t
        statefile.normalize(tdir, S.format(state, step))  # exactly one, even if one was added by hand
        n.message = message if state in S.FAILURES else None
        if state == S.COMPLETED:
            n.outputs = {}
            if any(o["kind"] == "var" for o in n.spec["outputs"].values()):
                try:
                    with open(os.path.join(tdir, "output-vars"), "rb") as f:
                        n.outputs = parse_output_vars(f.read())
                except FileNotFoundError:
                    pass
            if n.outputs:
                self.store.set_outputs(n, n.outputs)
            for d in self.graph.completed(n):
                d.state = S.READY
                self.store.touch(d)
                self.ready.append(d)
            self._on_completed_for_waits(n.key)
        self.store.touch(n)
        log.info("task %s: %s%s", n.key, n.state_name, f" ({n.message})" if n.message else "")
        self.reporter.task_ended(self, n)

    def _poll_running(self) -> None:
        """Refresh step-started.N of long-running tasks (for `list-states` while they run)."""
        for key in [*self.local.running_keys(), *self.slurm.jobs]:
            n = self.graph.nodes[key]
            name = statefile.read(task_dir(self.instance_dir, key))
            if not name or name == n.state_name:
                continue
            try:
                state, step = S.parse(name)
            except ValueError:
                continue
            if state == S.STEP_STARTED:
                n.state, n.step = state, step
                if n.started_at is None:
                    n.started_at = now()
                self.store.touch(n)

    def _interrupt(self) -> None:
        self.local.kill_all()
        deadline = time.monotonic() + 10
        while self.local.running and time.monotonic() < deadline:
            for e in self.local.wait(0.5):
                self._ingest(self.graph.nodes[e.key], e.returncode)

    def _unsatisfied_waits(self) -> list[str]:
        """Waits that nothing can satisfy: reported only when no task failed (else a wait may
        just be downstream of the failure)."""
        if any(n.state in S.FAILURES for n in self.graph.nodes.values()):
            return []
        out = []
        for (kind, items), (need, satisfiable) in zip(self.blocked_waits, self._glob_waits):
            failed = [k for k in need if self.graph.state_of(k) in S.FAILURES]
            if failed:
                continue  # reported as failures
            if kind == "keys":
                unknown = [k for k in items if not self.graph.is_known(k)]
                if unknown:
                    out.append(f"dsl.wait_for_tasks waits for {', '.join(map(repr, unknown))}, "
                               "which the generator never yields")
            elif not satisfiable:
                empty = [g for g in items if not self.graph.keys_matching(g)]
                out.append(f"dsl.wait_for_matching_tasks waits for {', '.join(map(repr, empty))}, "
                           "which match no task")
        return out


    # -- restarts -----------------------------------------------------------------------------
    def retry_failed(self, reset: bool) -> list[Node]:
        """Failed, killed and timed-out tasks become ready again: resumed at the failed step, or,
        with reset, from step 0 with their output dir and variables cleared."""
        retried = [n for n in self.graph.nodes.values() if n.state in S.FAILURES]
        for n in retried:
            self._make_ready(n, 0 if reset else (n.step or 0), reset)
        self.store.flush()
        return retried

    def restart_tasks(self, keys, at_step: int | None = None, reset: bool = False) -> list[Node]:
        """Make the given tasks ready to rerun: at_step, else the failed step, else step 0."""
        nodes = []
        for key in keys:
            n = self.graph.nodes.get(key)
            if n is None:
                raise DryPipeError(f"no task {key!r} in {self.instance_dir}")
            if n.state in S.ACTIVE:
                raise DryPipeError(f"task {key!r} is running ({n.state_name}); kill it first "
                                   f"(.drypipe/{key}/task kill)")
            if n.pending:
                waits = sorted(k for k in n.upstream if self.graph.state_of(k) != S.COMPLETED)
                raise DryPipeError(f"task {key!r} waits on {', '.join(map(repr, waits))}")
            n_steps = len(n.spec["steps"])
            if at_step is not None and not 0 <= at_step < n_steps:
                raise DryPipeError(f"task {key!r}: --at-step {at_step} is not a step (0..{n_steps - 1})")
            step = 0 if reset else at_step if at_step is not None else (
                n.step or 0) if n.state in S.FAILURES else 0
            nodes.append((n, step))
        for n, step in nodes:
            self._make_ready(n, step, reset)
        self.store.flush()
        return [n for n, _ in nodes]

    def _make_ready(self, n: Node, start_step: int, reset: bool) -> None:
        import shutil
        tdir = task_dir(self.instance_dir, n.key)
        if reset:
            out = os.path.join(self.instance_dir, "output", n.key)
            shutil.rmtree(out, ignore_errors=True)
            try:
                os.unlink(os.path.join(tdir, "output-vars"))
            except FileNotFoundError:
                pass
        if n.state == S.COMPLETED:
            self.graph.uncompleted(n)
        n.start_step = start_step
        n.state, n.step, n.message = S.READY, None, None
        if os.path.isdir(tdir):
            statefile.write(tdir, S.READY)
        self.store.touch(n)
        self.store.transition(n, S.READY, None, now())
        if n not in self.ready:
            self.ready.append(n)

    def run_tasks(self, keys, wait: bool = True) -> RunResult | None:
        """Launch just these (ready) tasks; with wait, until they end. Nothing else is started."""
        wanted = [self.graph.nodes[k] for k in keys]
        others = [n for n in self.ready if n not in wanted]
        self.ready = collections.deque(n for n in wanted if n.state == S.READY)
        if not wait:  # detached: all at once, they outlive this process
            self.local.max_parallel = max(self.local.max_parallel, len(self.ready) + self.local.running)
        try:
            while self.ready or (wait and (self.local.running or self.slurm.running or self.remote.running)):
                self._launch(None, [])
                if not wait:
                    if not self.ready:
                        break
                    continue
                if self.local.running or self.slurm.running or self.remote.running:
                    self._wait_and_ingest()
                    # completions made downstream tasks ready: they wait for the next `drypipe run`
                    others.extend(n for n in self.ready if n not in wanted)
                    self.ready = collections.deque(n for n in self.ready if n in wanted)
        finally:
            self.ready = collections.deque(others + [n for n in self.ready if n not in others])
            self.store.flush()
        if not wait:
            return None
        return RunResult(self.graph, [], [])

    def close(self) -> None:
        """Release the instance (its lock and DB connections)."""
        self.local.shutdown(kill=False)
        self.remote.close()
        self.store.close()
        self.engine.dispose()
        self.lock.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class NullReporter:
    def started(self, orch): pass
    def generated(self, orch, n): pass
    def progress(self, orch): pass
    def task_ended(self, orch, node): pass
    def finished(self, orch, result): pass


@contextlib.contextmanager
def _gc_paused():
    """Building the graph allocates a few objects per task and frees almost none: the cyclic GC
    would rescan them all, again and again (2.5 s of a 100k-task prepare). Pause it, then
    freeze what was built so later collections skip the long-lived graph."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.freeze()
            gc.enable()


def _check_supported(key: str, conf: TaskConf) -> None:
    if conf.is_remote and not conf.remote_base_dir:
        raise InvalidPipeline(f"task {key!r}: TaskConf ssh_specs needs remote_base_dir")


def _ensure_instance_dir(path: str) -> None:
    try:
        os.makedirs(os.path.join(path, ".drypipe"), exist_ok=True)
        os.makedirs(os.path.join(path, "output"), exist_ok=True)
    except OSError as e:
        raise InstanceError(f"{path}: cannot create the instance directory: {e.strerror}") from e
    if not os.access(os.path.join(path, ".drypipe"), os.W_OK) or not os.access(path, os.W_OK):
        raise InstanceError(f"{path}: instance directory is not writable")


def _write_text(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def _log_size(tdir: str) -> int:
    try:
        return os.path.getsize(os.path.join(tdir, "drypipe.log"))
    except OSError:
        return 0


__all__ = ["Orchestrator", "RunResult", "DryPipeError"]

