"""The orchestrator's side of tasks on remote hosts: launching them per host, mirroring their
progress, ingesting them when they end, and deferring them while a host is unreachable."""
from __future__ import annotations

import os
import time

from ..errors import DryPipeError
from ..executors.remote import HostUnreachable
from ..executors.slurm import SlurmEnded, parse_pending_job_id, pending_job_id, write_array_dir
from ..state import statefile
from ..state import states as S
from . import recovery, slurm_tasks
from .materialize import DRYPIPE_ROOT, import_root, task_dir, upload_paths

RETRY_UNREACHABLE_EVERY = 2.0


def unreachable_timeout() -> float:
    """How long a run waits for an unreachable host before stopping (its tasks stay resumable)."""
    return float(os.environ.get("DRYPIPE_SSH_UNREACHABLE_TIMEOUT", "300"))


def launch(orch, nodes) -> None:
    """Upload and start remote tasks: per host, one rsync and one command."""
    by_host = {}
    for n in nodes:
        try:
            h = orch.remote.host_for(n.conf)
        except DryPipeError as e:
            orch.fail_unlaunched(n, str(e))
            continue
        by_host.setdefault(id(h), (h, []))[1].append(n)
    for h, group in by_host.values():
        try:
            kinds = {s["kind"] for n in group for s in n.spec["steps"]}
            python = group[0].conf.python_bin or "python3"
            # the code dir always: bash snippets may use $__pipeline_code_dir/<anything>
            extra = orch.remote.prepare_host(h, "python" in kinds, orch.materializer.code_dir, DRYPIPE_ROOT,
                                             python, packages(group), need_code=True)
            slurm = [n for n in group if n.executer_type == "slurm"]
            procs = [n for n in group if n.executer_type != "slurm"]
            if procs:
                items = [(n.key, n.start_step, upload_paths(orch.instance_dir, n.spec)) for n in procs]
                pids = orch.remote.launch(h, items, extra)
                extra = []
                for n in procs:
                    orch.set_job_id(n, f"{h.spec.label}:{pids.get(n.key, '?')}")
            by_conf: dict[int, list] = {}
            for n in slurm:
                by_conf.setdefault(n.conf_id, []).append(n)
            for nodes in by_conf.values():
                array_dir = slurm_tasks.new_array_dir(orch)
                write_array_dir(orch.instance_dir, array_dir, [(n.key, n.start_step) for n in nodes])
                rel = os.path.relpath(array_dir, orch.instance_dir)
                for i, n in enumerate(nodes):  # where a crash recovery finds the job
                    n.job_id = pending_job_id(rel, i)
                    orch.store.touch(n)
                orch.store.flush()
                items = [(n.key, n.start_step, upload_paths(orch.instance_dir, n.spec)) for n in nodes]
                ids = orch.remote.sbatch(h, nodes[0].conf, array_dir, items, extra)
                extra = []
                for n, jid in zip(nodes, ids):
                    orch.set_job_id(n, jid)
        except HostUnreachable as e:
            if h.unreachable_since is None:
                h.unreachable_since = time.monotonic()
            for n in group:
                defer(orch, n, str(e))
            continue
        except DryPipeError as e:
            msg = str(e) if str(e).startswith(h.spec.label) else f"{h.spec.label}: {e}"
            for n in group:
                orch.fail_unlaunched(n, msg)
            continue
        h.unreachable_since = None


def packages(nodes) -> dict[str, str]:
    """Top-level package name -> local dir, for the dotted modules of python steps."""
    out = {}
    for n in nodes:
        for s in n.spec["steps"]:
            if s["kind"] == "python" and "." in s["module"]:
                top = s["module"].split(".")[0]
                root = import_root(s["module"])
                if root and os.path.isdir(os.path.join(root, top)):
                    out[top] = os.path.join(root, top)
                else:  # not imported in this process (a command by hand): find it
                    import importlib.util
                    try:
                        spec = importlib.util.find_spec(top)
                    except (ImportError, ValueError):
                        spec = None
                    if spec is not None and spec.submodule_search_locations:
                        out[top] = list(spec.submodule_search_locations)[0]
    return out


def defer(orch, n, reason: str) -> None:
    """The host is unreachable: back to ready, retried later (not a failure)."""
    if parse_pending_job_id(n.job_id):
        n.job_id = None
    orch.fire(n, "launch-lost", message=f"host unreachable: {reason}")
    orch.deferred.append((time.monotonic() + RETRY_UNREACHABLE_EVERY, n))


def release_deferred(orch) -> None:
    t = time.monotonic()
    due = [n for when, n in orch.deferred if when <= t]
    if due:
        orch.deferred = [(when, n) for when, n in orch.deferred if when > t]
        orch.ready.extend(due)


def poll(orch) -> None:
    """One status round trip per host; mirror progress; download and ingest ended tasks."""
    ended, progress, _ = orch.remote.poll_hosts()
    for key, name in progress.items():
        n = orch.graph.nodes[key]
        try:
            state, step = S.parse(name)
        except ValueError:
            continue
        if state == S.STEP_STARTED and n.state in S.ACTIVE and (n.state == S.LAUNCHED or step > (n.step or 0)):
            orch.fire(n, "step-started", step=step)  # the host's log comes down when it ends
    for e in ended:
        tdir = task_dir(orch.instance_dir, e.key)
        name = statefile.read(tdir)  # the downloaded one outranks the local `launched`
        if name:
            statefile.write(tdir, name)
        recovery.ingest(orch, orch.graph.nodes[e.key], None, slurm=e if isinstance(e, SlurmEnded) else None)


def stranded(orch) -> list[str]:
    """Keys of remote tasks on hosts unreachable for longer than the timeout, when nothing
    else runs: the run stops and reports them (they are not failed)."""
    if orch.local.running or orch.slurm.running:
        return []
    if orch.remote.running and orch.remote.unreachable_for() > unreachable_timeout():
        return sorted(k for h in orch.remote.hosts.values() for k in h.watched)
    if not orch.remote.running and orch.deferred:
        oldest = min((h.unreachable_since for h in orch.remote.hosts.values() if h.unreachable_since),
                     default=None)
        if oldest is not None and time.monotonic() - oldest > unreachable_timeout():
            return sorted(n.key for _, n in orch.deferred)
    return []
