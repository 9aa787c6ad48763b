"""Array parents: a named group of Slurm tasks submitted by hand as one job array.

`.drypipe/<parent>/task-keys.tsv` lists the children (line i = array index i); the parent
is not a task (no DB row); its children are ordinary tasks whose job ids are '<job>_<i>'."""
from __future__ import annotations

import fnmatch
import os

from ..dsl.task import check_key
from ..errors import DryPipeError
from ..executors.slurm import pending_job_id, read_array_keys, write_array_dir
from ..state import states as S
from .materialize import task_dir


def parent_dir(orch, parent: str) -> str:
    return os.path.join(orch.instance_dir, ".drypipe", parent)


def is_parent(instance_dir: str, parent: str) -> bool:
    return os.path.isfile(os.path.join(instance_dir, ".drypipe", parent, "task-keys.tsv")) and \
        not os.path.exists(os.path.join(instance_dir, ".drypipe", parent, "task"))


def read_children(instance_dir: str, parent: str) -> list[tuple[int, str, int]]:
    """(index, key, start step) of the children of the array parent `parent` of an instance,
    read from its task-keys.tsv (no database, no orchestrator needed)."""
    if not is_parent(instance_dir, parent):
        raise DryPipeError(f"{parent!r} is not an array parent (create it with array-create-parent)")
    return [(i, k, s) for i, (k, s) in
            enumerate(read_array_keys(os.path.join(instance_dir, ".drypipe", parent)))]


def children(orch, parent: str) -> list[tuple[int, str, int]]:
    """(index, key, start step) of the parent's children."""
    return read_children(orch.instance_dir, parent)


def create_parent(orch, parent: str, key_glob: str = "*") -> list[str]:
    """Group the ready Slurm tasks matching key_glob under a new array parent."""
    check_key(parent)
    if parent in orch.graph.nodes or os.path.exists(parent_dir(orch, parent)):
        raise DryPipeError(f"{parent!r} already exists (a task or an array parent)")
    keys = [n.key for n in orch.graph.nodes.values()
            if n.executer_type == "slurm" and n.state == S.READY and fnmatch.fnmatchcase(n.key, key_glob)]
    if not keys:
        raise DryPipeError(f"no ready Slurm task matches {key_glob!r}")
    write_array_dir(orch.instance_dir, parent_dir(orch, parent), [(k, 0) for k in keys])
    return keys


def submit(orch, parent: str, limit: int | None = None) -> list[str]:
    """Submit the children not submitted yet (at most `limit` of them) as one array job."""
    todo = [(i, k) for i, k, _ in children(orch, parent) if orch.graph.nodes[k].state == S.READY]
    if limit is not None:
        todo = todo[:limit]
    if not todo:
        raise DryPipeError(f"array {parent!r}: no child left to submit")
    return _submit(orch, parent, todo)


def restart_failed(orch, parent: str, include_pre_launch: bool = False) -> list[str]:
    """Resubmit the failed children (at their failed step); with include_pre_launch, also
    those that never started (e.g. an array cancelled while pending)."""
    items = children(orch, parent)
    todo = []
    for i, k, _ in items:
        n = orch.graph.nodes[k]
        if n.state not in S.FAILURES:
            continue
        started = os.path.exists(os.path.join(task_dir(orch.instance_dir, k), "drypipe.log"))
        if started or include_pre_launch:
            todo.append((i, k))
    if not todo:
        raise DryPipeError(f"array {parent!r}: no failed child to restart"
                           + ("" if include_pre_launch else " (--include-pre-launch adds those never started)"))
    orch.restart_tasks([k for _, k in todo])
    steps = {k: orch.graph.nodes[k].start_step for _, k in todo}
    write_array_dir(orch.instance_dir, parent_dir(orch, parent), [(k, steps.get(k, s)) for _, k, s in items])
    return _submit(orch, parent, todo)


def _submit(orch, parent: str, todo: list[tuple[int, str]]) -> list[str]:
    nodes = [orch.graph.nodes[k] for _, k in todo]
    confs = {n.conf_id for n in nodes}
    if len(confs) > 1:
        raise DryPipeError(f"array {parent!r}: its children have different TaskConfs; one array needs one")
    submitted = set(nodes)
    orch.ready = type(orch.ready)(n for n in orch.ready if n not in submitted)
    rel = os.path.relpath(parent_dir(orch, parent), orch.instance_dir)
    for (i, _), n in zip(todo, nodes):
        orch.mark_launched(n, slurm=True)
        n.job_id = pending_job_id(rel, i)  # where a crash recovery finds the job (scheduler/slurm_tasks)
    orch.store.flush()
    try:
        ids = orch.slurm.sbatch_array(nodes[0].conf, parent_dir(orch, parent), todo)
    except DryPipeError as e:  # refused: nothing was submitted, the children are ready again
        for n in nodes:
            n.job_id = None
            orch.fire(n, "launch-lost", message=str(e))
        orch.store.flush()
        raise
    for n, jid in zip(nodes, ids):
        orch.set_job_id(n, jid)
    orch.store.flush()
    return ids


def rsync_list(instance_dir: str, parent: str) -> list[str]:
    """Paths (relative to the instance dir) of the children's task and output dirs, for
    `rsync --files-from` (with -r); reads no database (safe beside a running orchestrator)."""
    out = []
    for _, k, _ in read_children(instance_dir, parent):
        out += [f".drypipe/{k}/", f"output/{k}/"]
    return out
