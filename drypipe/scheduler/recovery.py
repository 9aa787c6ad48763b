"""Loading an instance, re-attaching to what an earlier orchestrator left running, and turning
what a task reports (its drypipe.log lines, its state file, what Slurm or its host says) into
events of the state machine, each with the task's own time."""
from __future__ import annotations

import json
import logging
import os

from ..conf import TaskConf
from ..errors import DryPipeError
from ..executors.launchers import is_launcher_alive, running_launchers
from ..executors.remote import HostUnreachable
from ..executors.slurm import ended_state, parse_pending_job_id
from ..runtime.render import parse_output_vars
from ..state import statefile
from ..state.machine import ENDINGS
from ..state import states as S
from ..state.store import now
from .graph import Node
from .materialize import task_dir
from . import attempts
from .tasklog import attempt_offset, last_start, read_transitions

log = logging.getLogger("drypipe.orchestrator")


def log_size(tdir: str) -> int:
    try:
        return os.path.getsize(os.path.join(tdir, "drypipe.log"))
    except OSError:
        return 0


def attempt_log_offset(tdir: str, launched_at: float | None) -> int:
    """Where the current attempt's lines start in drypipe.log (its `start` line; the end of the
    log when it has not started yet)."""
    off = attempt_offset(tdir, launched_at)
    return log_size(tdir) if off is None else off


def load(orch) -> None:
    """Read the graph from the database; repair state files; re-attach to running tasks."""
    store, graph = orch.store, orch.graph
    confs = {cid: TaskConf.from_dict(json.loads(js)) for cid, js in store.load_confs().items()}
    outputs = store.load_outputs()
    next_id = 1
    nodes = graph.nodes
    local_confs = {cid for cid, c in confs.items() if not c.is_remote}
    rows, runs = store.load_tasks()
    any_nonlocal = False
    if runs is None:  # whole rows
        for (id_, key, state, step, executer_type, conf_id, spec, created_at, job_id, launched_at, started_at,
             ended_at, message, attempt, retry) in rows:
            nodes[key] = Node(id_, key, state, step, executer_type, confs[conf_id], conf_id, spec, None, job_id,
                              created_at, launched_at, started_at, ended_at, message, attempt, retry)
            if executer_type == "slurm" or conf_id not in local_confs:
                any_nonlocal = True
    else:
        get_run = runs.get
        for id_, key, state, step, executer_type, conf_id, spec, created_at in rows:
            run = get_run(id_)
            if run is None:
                nodes[key] = Node(id_, key, state, step, executer_type, confs[conf_id], conf_id, spec, None, None,
                                  created_at)
            else:
                nodes[key] = Node(id_, key, state, step, executer_type, confs[conf_id], conf_id, spec, None,
                                  run[0], created_at, *run[1:])
            if executer_type == "slurm" or conf_id not in local_confs:
                any_nonlocal = True
    if outputs:
        for n in nodes.values():
            n.outputs = outputs.get(n.id)
    if rows:
        next_id = rows[-1][0] + 1  # (in id order)
    if any_nonlocal:
        orch.any_nonlocal = True
    orch.next_id = next_id
    if next_id > 1:
        attempts.load(orch, store.load_attempts(running_only=True))
    blocked = []
    if orch.defer_links:  # (prepare: the links are made if something needs them, graph.deferred)
        graph.deferred = [n for n in nodes.values() if n.state != S.COMPLETED]
        for n in graph.deferred:
            if n.state == S.READY:
                (blocked if graph.has_pending_upstream(n) else orch.ready).append(n)
    else:
        for n in nodes.values():
            if n.state != S.COMPLETED:
                graph.link(n)
                if n.state == S.READY:
                    if n.pending:
                        blocked.append(n)  # an upstream was restarted by an older release
                    else:
                        orch.ready.append(n)
    if orch.dry_run:
        return
    for n in blocked:
        orch.fire(n, "block")
    attempts.sweep_cgroups()
    adopt_manual_runs(orch)
    repair_state_files(orch)
    active = [n for n in graph.nodes.values() if n.state in S.ACTIVE]
    if active:
        graph.link_deferred()  # (what ended meanwhile makes its downstream ready)
        reattach(orch, active)
    store.flush()
    orch.remove_spent_scratch()  # of tasks that ended while nobody watched (prepare runs no wait)


def adopt_manual_runs(orch) -> None:
    """Ready tasks whose launcher was run by hand (`.drypipe/<key>/task`, `drypipe task
    --by-runner`) since the last run: their run is this attempt. Fire `launch` at the time the
    launcher started, then what it reported (or watch it, when it still runs)."""
    for n in list(orch.ready):
        if n.state != S.READY:
            continue
        tdir = task_dir(orch.instance_dir, n.key)
        name = statefile.read(tdir)
        if name is None or name in (S.READY, S.WAITING, S.LAUNCHED):
            continue  # (`launched`: this orchestrator's own launch, cut short before its commit)
        start = last_start(tdir)
        if start is None:
            continue
        offset, at, pid = start
        if n.ended_at is not None and at <= n.ended_at:
            continue  # the start of the attempt that already ended (the state file lags behind)
        orch.fire(n, "launch", at=at, mirror=False)
        n.log_offset = offset
        log.warning("task %s: was run by hand (pid %d); its run is taken as this attempt", n.key, pid)
        if is_launcher_alive(pid, tdir) and orch.local.attach(n.key, str(pid), tdir):
            n.job_id = str(pid)
            catch_up(orch, n)
        else:
            ingest(orch, n, None)


def repair_state_files(orch) -> None:
    """The DB is the truth for tasks not running: make each launched-once task dir hold
    exactly its state file again (edited, deleted or duplicated by hand). A completed task dir
    whose entries did not change since its state file was renamed or made there (the dir's
    mtime is not after the file's ctime) is not listed: two stats, for a run again on 100,000
    tasks."""
    for n in orch.graph.nodes.values():
        if n.state in S.ACTIVE or (n.launched_at is None and n.state != S.READY):
            continue  # (a ready task may have a dir: prepared, or a launch cut short before its commit)
        tdir = task_dir(orch.instance_dir, n.key)
        name = n.state_name
        if n.state == S.COMPLETED:
            try:
                if os.stat(tdir).st_mtime_ns <= os.stat(os.path.join(tdir, "state.completed")).st_ctime_ns:
                    continue  # nothing created, renamed or removed there since
            except OSError:
                pass  # no such file (or dir): look
        try:
            found = statefile.names(tdir)
        except FileNotFoundError:
            continue
        if found != [name]:
            log.warning("task %s: state files %s repaired to state.%s (the database's)", n.key,
                        found or "(none)", name)
            try:
                statefile.normalize(tdir, name)
            except OSError as e:  # an unwritable task dir: its launch will say so
                log.warning("task %s: cannot repair its state file: %s", n.key, e.strerror)


def reattach(orch, active: list[Node]) -> None:
    """Tasks the DB says are running (an earlier orchestrator died): watch those whose
    launcher (or job) still runs, ingest the others (relaunched if they never started)."""
    remote = [n for n in active if n.conf.is_remote]
    recover_remote_jobs(orch, [n for n in remote if n.executer_type == "slurm"
                               and (not n.job_id or parse_pending_job_id(n.job_id))])
    for n in remote:  # the next poll of its host tells
        orch.remote.watch(n.key, n.job_id if n.executer_type == "slurm" else None,
                          orch.remote.host_for(n.conf))
    active = [n for n in active if not n.conf.is_remote]
    slurm = [n for n in active if n.executer_type == "slurm"]
    pending = {n.key: p for n in slurm if (p := parse_pending_job_id(n.job_id)) is not None}
    recovered = orch.slurm.recover_jobs(pending) if pending else {}
    for n in slurm:
        n.log_offset = attempt_log_offset(task_dir(orch.instance_dir, n.key), n.launched_at)
        if n.key in pending:
            if n.key in recovered:
                orch.set_job_id(n, recovered[n.key])  # submitted, but died before recording it
            else:
                n.job_id = None  # sbatch never ran (or its job is long gone): the log tells
        if n.job_id:
            orch.slurm.watch(n.key, n.job_id, n.launched_at)  # the next poll says whether it still runs
        else:
            ingest(orch, n, None)
    active = [n for n in active if n.executer_type != "slurm"]
    launchers = running_launchers(orch.instance_dir, orch.materializer.runtime_path) if active else {}
    for n in active:
        # read this attempt's lines only: earlier attempts' were ingested by earlier runs
        n.log_offset = attempt_log_offset(task_dir(orch.instance_dir, n.key), n.launched_at)
        pid = launchers.get(n.key)
        if pid is not None and orch.local.attach(n.key, str(pid), task_dir(orch.instance_dir, n.key)):
            if n.job_id != str(pid):
                n.job_id = str(pid)
                orch.store.touch(n)
            catch_up(orch, n)
            continue
        ingest(orch, n, None)


def recover_remote_jobs(orch, nodes: list[Node]) -> None:
    """Remote Slurm tasks whose job id was not recorded (a crash between the remote sbatch and
    the commit): found from the array dir's job-id file, the host's copy, or its squeue."""
    by_host: dict[int, tuple] = {}
    for n in nodes:
        h = orch.remote.host_for(n.conf)
        by_host.setdefault(id(h), (h, []))[1].append(n)
    for h, group in by_host.values():
        try:
            found = orch.remote.recover_array_jobs(h, [n.key for n in group],
                                                   {n.key: n.launched_at for n in group if n.launched_at})
        except (HostUnreachable, DryPipeError) as e:
            log.warning("%s: cannot recover remote Slurm job ids: %s", h.spec.label, e)
            found = {}
        for n in group:
            if n.key in found:
                orch.set_job_id(n, found[n.key])
            elif parse_pending_job_id(n.job_id):
                n.job_id = None  # never submitted: the poll sees no launch, it is relaunched
                orch.store.touch(n)


def catch_up(orch, n: Node) -> None:
    """Fire the step-started events a running task logged since they were last read. The state
    file of a task this orchestrator's spawner forked is the orchestrator's to write (its
    launcher only logs); any other task (Slurm, remote, re-attached, run by hand) writes its own."""
    transitions, _, _, _ = read_transitions(task_dir(orch.instance_dir, n.key), n.log_offset)
    mirror = n.key in orch.local.launched_here
    for at, state, step in transitions:
        if state == S.STEP_STARTED and n.state in S.ACTIVE and _forward(n, step):
            orch.fire(n, "step-started", at=at, step=step, mirror=mirror)


def poll_running(orch) -> None:
    """Refresh step-started.N of long-running tasks (for `list-states` while they run), with the
    times the tasks logged."""
    for key in [*orch.local.running_keys(), *orch.slurm.jobs]:
        catch_up(orch, orch.graph.nodes[key])


def mirror_running(orch) -> None:
    """The steps started by the local tasks this orchestrator forked (their launchers only log
    them), to the DB and their state files, at most MIRROR_EVERY late."""
    for key in orch.local.launched_here:
        catch_up(orch, orch.graph.nodes[key])


def _forward(n: Node, step: int) -> bool:
    return n.state == S.LAUNCHED or (n.state == S.STEP_STARTED and step > (n.step or 0))


def ingest(orch, n: Node, returncode, slurm=None, reaped=None) -> None:
    """The task's process (or job) is over: fire the events it logged, each at its own time,
    then its ending (from its log, else its state file, else what Slurm says happened to it,
    else `killed`: it ended without a word)."""
    if n.state not in S.ACTIVE:
        return  # already ingested (reported twice)
    tdir = task_dir(orch.instance_dir, n.key)
    transitions, n.log_offset, message, n.usage = read_transitions(tdir, n.log_offset)
    if reaped or returncode is not None:  # a local launcher reaped by its reaper
        n.usage = attempts.with_rusage(n.usage, returncode, reaped)
    ending = None  # (at, state, step)
    first_started = None
    for at, state, step in transitions:
        if state == S.STEP_STARTED:
            first_started = at if first_started is None else first_started
            if _forward(n, step):
                orch.fire(n, "step-started", at=at, step=step, mirror=False)
        elif state in S.TERMINAL:
            ending = (at, state, step)
    if first_started is not None and (n.started_at is None or first_started < n.started_at):
        n.started_at = first_started  # a remote task's progress was mirrored with the poll's time
    if ending is None:
        ending = _ending_from_state_file(tdir)
    if slurm is not None:
        name = S.format(ending[1], ending[2]) if ending else None
        state, step, slurm_message = ended_state(name, slurm, n.step)
        if slurm.slurm_state and slurm.slurm_state != "VANISHED":  # the attempt's, until sacct says more
            n.usage = {**(n.usage or {}), "slurm_state": slurm.slurm_state}
        if ending is None or (state, step) != (ending[1], ending[2]):
            ending = (ending[0] if ending else now(), state, step)
        message = slurm_message or message
    if ending is None:
        if n.state == S.LAUNCHED and attempt_offset(tdir, n.launched_at) is None:
            # the launcher never ran (orchestrator died between DB write and spawn): relaunch
            orch.fire(n, "launch-lost", message=None)
            orch.ready.appendleft(n)
            return
        ending = (now(), S.KILLED, n.step or 0)
        message = ("task process ended without reporting (killed, or the machine restarted)"
                   if returncode is None else f"task process ended with status {returncode} without reporting")
    at, state, step = ending
    attempts.spent_cgroup(orch, n)
    if state == S.COMPLETED:
        if slurm is None and not n.conf.is_remote:
            orch.spent_scratch.append(n.key)  # its watched launcher left it: a spare at the next wait
        n.outputs = _output_vars(tdir, n)
        if n.outputs:
            orch.store.set_outputs(n, n.outputs)
    if state == S.KILLED and message is None:
        message = "received a signal (cancelled)"
    orch.fire(n, ENDINGS[state], at=at, step=step, message=message if state in S.FAILURES else None,
              mirror=False)
    statefile.normalize(tdir, n.state_name)  # exactly one, even if one was added by hand
    if state == S.COMPLETED:
        orch.on_completed(n)
    log.info("task %s: %s%s", n.key, n.state_name, f" ({n.message})" if n.message else "")
    orch.reporter.task_ended(orch, n)
    if state in (S.FAILED, S.TIMED_OUT) and n.retry < n.conf.retries:  # TaskConf(retries=N)
        log.warning("task %s: %s%s; retry %d of %d", n.key, n.state_name, f" ({n.message})" if n.message else "",
                    n.retry + 1, n.conf.retries)
        orch.fire(n, "retry", step=step)


def _ending_from_state_file(tdir: str):
    """(at, state, step) when the task's state file names an ending its log does not have
    (killed between its rename and its log line): at = the rename's time."""
    name = statefile.read(tdir)
    try:
        state, step = S.parse(name) if name else (None, None)
    except ValueError:
        return None
    if state not in S.TERMINAL:
        return None
    try:
        at = os.stat(os.path.join(tdir, statefile.PREFIX + name)).st_ctime
    except OSError:
        at = now()
    return at, state, step


def _output_vars(tdir: str, n: Node) -> dict:
    if not any(o["kind"] == "var" for o in n.spec["outputs"].values()):
        return {}
    try:
        with open(os.path.join(tdir, "output-vars"), "rb") as f:
            return parse_output_vars(f.read())
    except FileNotFoundError:
        return {}
