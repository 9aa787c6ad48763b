"""Making tasks run again: --restart-failed, --reset-failed, `restart`, `task`, and running a
chosen set of tasks (detached or waited for). Each is an event of the state machine; a reset
clears the task's output dir only once the database says the task was reset."""
from __future__ import annotations

import collections
import os

from ..errors import DryPipeError
from ..state import states as S
from .graph import Node
from .materialize import output_dir, task_dir
from .result import RunResult


def retry_failed(orch, reset: bool) -> list[Node]:
    """Failed, killed and timed-out tasks become ready again: resumed at the failed step, or,
    with reset, from step 0 with their output dir and variables cleared."""
    retried = [n for n in orch.graph.nodes.values() if n.state in S.FAILURES]
    make_ready(orch, [(n, 0 if reset else (n.step or 0)) for n in retried], reset)
    return retried


def restart_tasks(orch, keys, at_step: int | None = None, reset: bool = False) -> list[Node]:
    """Make the given tasks ready to rerun: at_step, else the failed step, else step 0."""
    nodes = []
    for key in keys:
        n = orch.graph.nodes.get(key)
        if n is None:
            raise DryPipeError(f"no task {key!r} in {orch.instance_dir}")
        if n.state in S.ACTIVE:
            raise DryPipeError(f"task {key!r} is running ({n.state_name}); kill it first "
                               f"(.drypipe/{key}/task kill)")
        if n.pending:
            waits = sorted(k for k in n.upstream if orch.graph.state_of(k) != S.COMPLETED)
            raise DryPipeError(f"task {key!r} waits on {', '.join(map(repr, waits))}")
        n_steps = len(n.spec["steps"])
        if at_step is not None and not 0 <= at_step < n_steps:
            raise DryPipeError(f"task {key!r}: --at-step {at_step} is not a step (0..{n_steps - 1})")
        if at_step is not None and n.state in S.FAILURES and at_step > (n.step or 0):
            raise DryPipeError(f"task {key!r}: --at-step {at_step}: its step {n.step or 0} never completed "
                               f"({n.state_name}); restart it at step {n.step or 0} or before")
        step = 0 if reset else at_step if at_step is not None else (
            n.step or 0) if n.state in S.FAILURES else 0
        nodes.append((n, step))
    make_ready(orch, nodes, reset)
    return [n for n, _ in nodes]


def make_ready(orch, items: list[tuple[Node, int]], reset: bool) -> None:
    """Fire the event that makes each task ready at its step; its `ready` downstream go back to
    waiting when it was completed. Output dirs of reset tasks are cleared after the commit."""
    cleared = []
    for n, step in items:
        was_completed = n.state == S.COMPLETED
        if reset:
            orch.fire(n, "reset")
            cleared.append(n)
        elif n.state in S.FAILURES:
            orch.fire(n, "restart", step=step)
        elif was_completed:
            orch.fire(n, "restart-at-step", step=step)
        elif n.state == S.READY:
            n.start_step = step  # already ready: nothing changes but where it starts
            continue
        else:
            raise DryPipeError(f"task {n.key!r} is {n.state_name}: it cannot be restarted")
        if was_completed:
            if n.upstream is None:  # completed tasks are loaded unlinked
                orch.graph.link(n)
            for d in orch.graph.uncompleted(n):
                if d.state == S.READY:
                    orch.fire(d, "block")
    if orch.dry_run:
        return
    orch.store.flush()
    import shutil  # (here: a run that restarts nothing does not pay its import)
    for n in cleared:  # the database says reset: the old outputs can go
        shutil.rmtree(output_dir(orch.instance_dir, n.key), ignore_errors=True)
        try:
            os.unlink(os.path.join(task_dir(orch.instance_dir, n.key), "output-vars"))
        except FileNotFoundError:
            pass


def run_tasks(orch, keys, wait: bool = True):
    """Launch just these (ready) tasks; with wait, until they end. Nothing else is started."""
    wanted = [orch.graph.nodes[k] for k in keys]
    wanted_set = set(wanted)
    others = [n for n in orch.ready if n not in wanted_set]
    orch.ready = collections.deque(n for n in wanted if n.state == S.READY)
    if not wait:  # detached: all at once, they outlive this process (and write their own states)
        orch.local.detached = True
        orch.local.max_parallel = max(orch.local.max_parallel, len(orch.ready) + orch.local.running)
    try:
        while orch.ready or (wait and (orch.local.running or orch.slurm.running or orch.remote.running)):
            orch.launch_round()
            if not wait:
                if not orch.ready:
                    break
                continue
            if orch.local.running or orch.slurm.running or orch.remote.running:
                orch.wait_and_ingest()
                # completions made downstream tasks ready: they wait for the next `drypipe run`
                others.extend(n for n in orch.ready if n not in wanted_set)
                orch.ready = collections.deque(n for n in orch.ready if n in wanted_set)
    finally:
        kept = set(others)
        orch.ready = collections.deque(others + [n for n in orch.ready if n not in kept])
        orch.remove_spent()  # what the last endings left (scratch dirs, cgroups)
        orch.store.flush()
    if not wait:
        return None
    return RunResult(orch.graph, [], [])
