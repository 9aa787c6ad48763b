"""`drypipe service`: one long-running process that drives many instances of several pipelines.

The main thread scans the instances dirs on the sleep schedule and starts an instance per
`state.ready` marker (scan: one listdir and one stat per folder). Each running instance is an
Orchestrator, exactly as `drypipe run` drives it, in a thread of its own: orchestrators spend
their time blocked on pidfds, squeue or ssh, so one process holds hundreds of them. Their local
tasks share one SlotPool (`-j`); Slurm and remote tasks are not counted against it.

Nothing here changes a task's state: the orchestrators do, through the state machine. The
service only moves instance markers (service/markers.py), in this order: the instance's lock is
taken (the Orchestrator is built), then `ready` -> `running`, then, after the run, `completed`
or `failed`. A kill -9 at any point leaves either `ready` (picked up again: its failed tasks, if
any, are retried, the rest re-attached) or `running` (resumed: re-attached); the orchestrator's
recovery launches nothing twice. SIGTERM/SIGINT stop the orchestrators without touching what
runs (their markers stay `running`) and the service exits 0."""
from __future__ import annotations

import gc
import json
import logging
import os
import resource
import threading
import time

from ..errors import DryPipeError, InstanceError
from ..executors.slots import SlotPool
from ..scheduler.materialize import restrict_umask
from ..scheduler.orchestrator import Orchestrator
from ..state.lock import InstanceLock, holder_pid
from . import markers as M
from .markers import SERVICE_JSON, SERVICE_LOCK, service_file
from .config import ServiceType

DEFAULT_SLEEP_SCHEDULE = (0.0, 1.0, 3.0, 5.0, 10.0, 15.0, 20.0)
SERVICE_LOG = "service.log"
BUSY_RETRY_S = 30.0  # an instance someone runs by hand is looked at again after this
log = logging.getLogger("drypipe.service")


def default_max_instances() -> int:
    """Instances driven at once (each holds a thread, a spawner and a few fds)."""
    try:
        return max(1, int(os.environ.get("DRYPIPE_SERVICE_MAX_INSTANCES", "") or 100))
    except ValueError:
        raise DryPipeError("DRYPIPE_SERVICE_MAX_INSTANCES: expected a number") from None


class Worker:
    """One instance being driven, in its own thread."""

    def __init__(self, service: "Service", stype: ServiceType, instance_dir: str, resume: bool):
        self.service, self.type, self.dir, self.resume = service, stype, instance_dir, resume
        self.outcome: str | None = None  # completed, failed, stopped, busy, gone
        self.thread = threading.Thread(target=self.main, name=f"drypipe:{stype.name}:{os.path.basename(instance_dir)}",
                                       daemon=True)

    @property
    def name(self) -> str:
        return os.path.basename(self.dir)

    def main(self) -> None:
        to_log = self.service.instance_log
        to_log.dirs[threading.get_ident()] = self.dir
        try:
            self.outcome = self.drive()
        except BaseException as e:  # one instance's trouble (even sys.exit in its generator) is its own
            log.debug("instance %s: traceback", self.dir, exc_info=True)
            self.fail(f"{type(e).__name__}: {e}" if not isinstance(e, DryPipeError) else str(e))
        finally:
            to_log.dirs.pop(threading.get_ident(), None)
            self.service.wake.set()

    def fail(self, reason: str) -> None:
        self.outcome = M.FAILED
        for old in (M.RUNNING, M.READY):
            try:
                if M.move(self.dir, old, M.FAILED):
                    break
            except OSError:
                break
        M.log_line(self.dir, f"failed: {reason}")
        log.error("%s %s: failed: %s", self.type.name, self.name, reason)

    def drive(self) -> str:
        svc = self.service
        if holder_pid(self.dir) is not None:
            return "busy"
        try:
            orch = Orchestrator(self.dir, self.type.pipeline, generator_spec=self.type.generator_spec,
                                local_pool=svc.pool, stop=svc.stop, sleep_schedule=svc.sleep_schedule)
        except InstanceError:
            if holder_pid(self.dir) is not None:
                return "busy"  # somebody runs it by hand: look again later
            raise
        with orch:
            if not self.resume:
                if not M.move(self.dir, M.READY, M.RUNNING):
                    return "gone"  # the marker was moved meanwhile (by a person)
                retried = orch.retry_failed(reset=False)
                M.log_line(self.dir, f"started by the service (pipeline type {self.type.name}, pid {os.getpid()})"
                           + (f"; {len(retried)} failed task(s) retried at their failed step" if retried else ""))
            else:
                M.log_line(self.dir, f"resumed by the service (pid {os.getpid()})")
            log.info("%s %s: %s", self.type.name, self.name, "resumed" if self.resume else "started")
            result = orch.run()
        if result.stopped:
            M.log_line(self.dir, "service stopped; running tasks left running")
            return "stopped"
        reason = failure_reason(result, self.dir)
        if reason is None:
            M.move(self.dir, M.RUNNING, M.COMPLETED)
            tasks = f"{result.total} task" + ("s" if result.total != 1 else "")
            M.log_line(self.dir, f"completed: {tasks}")
            log.info("%s %s: completed (%s)", self.type.name, self.name, tasks)
            return M.COMPLETED
        self.fail(reason)
        return M.FAILED


def failure_reason(result, instance_dir: str) -> str | None:
    """Why a run did not complete every task, in one line (None: it did)."""
    parts = []
    if result.generator_error:
        parts.append(f"the generator failed: {result.generator_error}")
    for n in result.failed[:5]:
        parts.append(f"task {n.key} {n.state_name}" + (f" ({n.message})" if n.message else "")
                     + f", see {os.path.join(instance_dir, '.drypipe', n.key, 'out.log')}")
    if len(result.failed) > 5:
        parts.append(f"and {len(result.failed) - 5} more failed tasks")
    parts += result.unsatisfied_waits
    if result.unreachable:
        parts.append(f"hosts unreachable: {', '.join(result.unreachable)}")
    if not parts and not result.all_completed:
        parts.append(f"{result.total - result.counts.get('completed', 0)} of {result.total} tasks not completed")
    return "; ".join(parts) or None


class InstanceLogHandler(logging.Handler):
    """Warnings and errors logged while driving an instance (by its thread) also go to its
    .drypipe/instance.log, where whoever dropped it looks."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.dirs: dict[int, str] = {}  # thread ident -> instance dir

    def emit(self, record: logging.LogRecord) -> None:
        d = self.dirs.get(record.thread)
        if d is not None and record.name != log.name:  # the service's own lines are written already
            M.log_line(d, f"{record.levelname.lower()}: {record.getMessage()}")


class Service:
    def __init__(self, home: str, types: list[ServiceType], jobs: int | None = None,
                 sleep_schedule=DEFAULT_SLEEP_SCHEDULE, max_instances: int | None = None):
        self.home = os.path.abspath(home)
        self.types = types
        self.jobs = jobs or os.cpu_count() or 1
        self.pool = SlotPool(self.jobs)
        self.sleep_schedule = tuple(sleep_schedule) or DEFAULT_SLEEP_SCHEDULE
        self.max_instances = max_instances or default_max_instances()
        self.stop = threading.Event()  # set by SIGTERM/SIGINT: stop launching, exit
        self.wake = threading.Event()  # set when a worker ends (or on stop): scan again now
        self.workers: dict[str, Worker] = {}  # instance dir -> its worker
        self.busy: dict[str, float] = {}  # instance dir -> when to look at it again
        self.lock: InstanceLock | None = None
        self.instance_log = InstanceLogHandler()
        self.scans = 0

    # -- start-up ----------------------------------------------------------------------------
    def open(self) -> None:
        """Take the home's lock, write service.json, create the instances dirs."""
        try:
            os.makedirs(os.path.join(self.home, ".drypipe"), exist_ok=True)
            for t in self.types:
                os.makedirs(t.instances_dir, exist_ok=True)
        except OSError as e:
            raise InstanceError(f"{e.filename}: cannot create it: {e.strerror}") from e
        self.lock = InstanceLock(self.home, SERVICE_LOCK, holder="drypipe service", where="this home").acquire()
        restrict_umask()
        _raise_fd_limit()
        logging.getLogger("drypipe").addHandler(self.instance_log)
        info = {"pid": os.getpid(), "started_at": time.time(), "jobs": self.jobs,
                "sleep_schedule": list(self.sleep_schedule), "types": [t.to_json() for t in self.types]}
        tmp = service_file(self.home, SERVICE_JSON) + ".tmp"
        with open(tmp, "w") as f:
            json.dump(info, f, indent=1)
        os.replace(tmp, service_file(self.home, SERVICE_JSON))

    def close(self) -> None:
        logging.getLogger("drypipe").removeHandler(self.instance_log)
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    # -- the loop ----------------------------------------------------------------------------
    def run(self) -> None:
        """Scan, start, reap, until stop is set; then wait for the orchestrators to let go."""
        self.open()
        try:
            log.info("service started in %s (pid %d): %s; -j %d", self.home, os.getpid(),
                     ", ".join(f"{t.name} <- {t.instances_dir}" for t in self.types), self.jobs)
            # instances a previous service left running: re-attached, all of them (their tasks
            # may be running, and only an orchestrator ingests how they end), caps or not
            for t in self.types:
                for _, d in M.scan(t.instances_dir, M.RUNNING):
                    self.start(t, d, resume=True)
            step = 0
            while not self.stop.is_set():
                found = self.reap()
                found = self.scan() or found
                step = 0 if found else min(step + 1, len(self.sleep_schedule) - 1)
                self.wake.wait(self.sleep_schedule[step])
                self.wake.clear()
            log.info("stopping: %d instance(s) running, their tasks left running", len(self.workers))
            for w in list(self.workers.values()):
                w.thread.join()
            self.reap()
        finally:
            self.close()

    def request_stop(self) -> None:
        """From a signal handler: stop launching and exit once the orchestrators let go."""
        self.stop.set()
        self.wake.set()

    def start(self, stype: ServiceType, instance_dir: str, resume: bool) -> None:
        w = Worker(self, stype, instance_dir, resume)
        self.workers[instance_dir] = w
        w.thread.start()

    def scan(self) -> bool:
        """Start the instances whose marker says ready, within the caps; True if any started."""
        self.scans += 1
        started = False
        now = time.monotonic()
        for t in self.types:
            room = self.max_instances - len(self.workers)
            if room <= 0:
                break
            if t.max_running is not None:
                room = min(room, t.max_running - sum(1 for w in self.workers.values() if w.type is t))
                if room <= 0:
                    continue
            skip = {os.path.basename(d) for d in self.workers if os.path.dirname(d) == t.instances_dir}
            skip |= {os.path.basename(d) for d, when in self.busy.items()
                     if when > now and os.path.dirname(d) == t.instances_dir}
            for _, d in M.scan(t.instances_dir, M.READY, skip)[:room]:
                self.busy.pop(d, None)
                self.start(t, d, resume=False)
                started = True
        return started

    def reap(self) -> bool:
        """Forget the workers whose thread ended; True if any did."""
        done = [w for w in self.workers.values() if not w.thread.is_alive()]
        for w in done:
            del self.workers[w.dir]
            if w.outcome == "busy":
                log.warning("%s %s: another drypipe orchestrator runs it; looking again in %ds",
                            w.type.name, w.name, BUSY_RETRY_S)
                self.busy[w.dir] = time.monotonic() + BUSY_RETRY_S
        if done:
            gc.unfreeze()  # orchestrators freeze their graphs; let the cyclic GC have them back
        return bool(done)


def _raise_fd_limit() -> None:
    """Each instance holds a few descriptors (DB, spawner pipes, pidfds): lift the soft limit."""
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 65536, hard))
    except (ValueError, OSError):
        pass
