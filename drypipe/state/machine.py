"""The task state machine: the table of states and events, its guards, and `fire`, the only
function that changes a task's state.

Every change of a task's state, whoever causes it (the orchestrator launching, a task reporting
through its log, Slurm or a remote host reporting an end, a person restarting), is one event
fed to `fire`, which checks it against TABLE, updates the task's state fields and hands the
transition to a recorder that persists the new state and its `transitions` row in the same
transaction. An event that the table does not allow from the task's state raises
IllegalTransition: it is a bug, never silently absorbed.

`fire` works on any object with the fields of a task row (state, step, launched_at, started_at,
ended_at, message, start_step, key, retry): the orchestrator's graph nodes. `retry` counts the
automatic retries since a person last made the task run again: `retry` adds one, `restart`,
`reset` and `restart-at-step` set it back to 0. A task is *created* in
`waiting`, or `ready` when it has no uncompleted upstream; creation is not a transition.

| event           | from                         | to               | notes                                  |
|-----------------|------------------------------|------------------|----------------------------------------|
| unblock         | waiting                      | ready            | every upstream completed               |
| block           | ready                        | waiting          | an upstream was restarted              |
| launch          | ready                        | launched         | a new attempt, from start_step         |
| launch-lost     | launched                     | ready            | the launch never happened (host        |
|                 |                              |                  | unreachable; crash between commit and  |
|                 |                              |                  | spawn): launched again later           |
| step-started    | launched, step-started.M     | step-started.N   | N > M                                  |
| completed       | running                      | completed        | ended_at = the task's own end time     |
| failed          | running                      | failed.N         | a step failed, an output is missing,   |
|                 |                              |                  | or the launch was impossible           |
| killed          | running                      | killed.N         | cancelled, or died without a word      |
| timed-out       | running                      | timed-out.N      | Slurm time limit                       |
| retry           | failed.N, timed-out.N        | ready or waiting | automatic retry, resumes at N          |
| restart         | failed.N, killed.N,          | ready or waiting | --restart-failed, restart: resumes at N|
|                 | timed-out.N                  |                  |                                        |
| reset           | any state not running        | ready or waiting | step 0; output dir cleared after the   |
|                 |                              |                  | database says so                       |
| restart-at-step | completed                    | ready or waiting | restart --at-step K (K=0: from start)  |

"ready or waiting": waiting when an upstream is not completed (restarted since the task ran).

"running" is `launched` or `step-started.N`.
"""
from __future__ import annotations

from ..errors import DryPipeError
from . import states as S

RUNNING = S.ACTIVE
NOT_RUNNING = frozenset(S.ALL) - RUNNING


class IllegalTransition(DryPipeError):
    """An event that the state machine does not allow from the task's current state."""


# event -> (states it may fire from, the states it leads to)
TABLE: dict[str, tuple[frozenset, frozenset]] = {
    "unblock": (frozenset({S.WAITING}), frozenset({S.READY})),
    "block": (frozenset({S.READY}), frozenset({S.WAITING})),
    "launch": (frozenset({S.READY}), frozenset({S.LAUNCHED})),
    "launch-lost": (frozenset({S.LAUNCHED}), frozenset({S.READY})),
    "step-started": (RUNNING, frozenset({S.STEP_STARTED})),
    "completed": (RUNNING, frozenset({S.COMPLETED})),
    "failed": (RUNNING, frozenset({S.FAILED})),
    "killed": (RUNNING, frozenset({S.KILLED})),
    "timed-out": (RUNNING, frozenset({S.TIMED_OUT})),
    "retry": (frozenset({S.FAILED, S.TIMED_OUT}), frozenset({S.READY, S.WAITING})),
    "restart": (S.FAILURES, frozenset({S.READY, S.WAITING})),
    "reset": (NOT_RUNNING, frozenset({S.READY, S.WAITING})),
    "restart-at-step": (frozenset({S.COMPLETED}), frozenset({S.READY, S.WAITING})),
}
EVENTS = tuple(TABLE)
ENDINGS = {S.COMPLETED: "completed", S.FAILED: "failed", S.KILLED: "killed", S.TIMED_OUT: "timed-out"}
_REPORTED = {S.STEP_STARTED: "step-started", **ENDINGS}


def event_for_report(state: str) -> str:
    """The event of a state that a task (or its executor) reports: 'failed' -> 'failed'."""
    try:
        return _REPORTED[state]
    except KeyError:
        raise ValueError(f"a task cannot report {state!r}") from None


def allowed(state: str, event: str) -> bool:
    rule = TABLE.get(event)
    return rule is not None and state in rule[0]


def fire(task, event: str, at: float, record, step: int | None = None, message: str | None = None,
         waiting: bool = False) -> None:
    """Apply `event` to task (at time `at`, the moment it happened) and record the transition.

    step: the step of step-started/failed/killed/timed-out (default: the task's current step,
    else its start step), or the step a retry/restart/restart-at-step resumes at.
    waiting: for the events that make a task run again, it has an uncompleted upstream (an
    upstream restarted since it ran): it waits for it instead of being ready.
    record(task, state, step, at) persists the task's new fields and its transition row."""
    rule = TABLE.get(event)
    if rule is None:
        raise IllegalTransition(f"task {task.key!r}: unknown event {event!r}")
    sources, targets = rule
    state = task.state
    if state not in sources:
        raise IllegalTransition(f"task {task.key!r}: event {event!r} is not allowed in state "
                                f"{S.format(state, task.step)}")
    if event == "step-started":
        if step is None or step < 0 or (state == S.STEP_STARTED and step <= (task.step or 0)):
            raise IllegalTransition(f"task {task.key!r}: step-started.{step} after {S.format(state, task.step)}")
        task.state, task.step = S.STEP_STARTED, step
        if task.started_at is None:
            task.started_at = at
    elif event in ("completed", "failed", "killed", "timed-out"):
        new = next(iter(targets))
        if new == S.COMPLETED:
            task.step = None
        else:
            task.step = step if step is not None else (task.step if task.step is not None else task.start_step)
        task.state, task.ended_at = new, at
        task.message = message if new != S.COMPLETED else None
    elif event == "launch":
        task.state, task.step = S.LAUNCHED, None
        task.launched_at, task.started_at, task.ended_at, task.message = at, None, None, None
    elif event == "launch-lost":
        task.state, task.step, task.message = S.READY, None, message
    elif event in ("unblock", "block"):
        task.state, task.step = next(iter(targets)), None
    else:  # retry, restart, reset, restart-at-step: the task will run again
        if event == "reset":
            start = 0
        elif event == "restart-at-step":
            start = step or 0
        else:
            start = step if step is not None else (task.step or 0)
        task.state = S.WAITING if waiting else S.READY
        task.step, task.message, task.start_step = None, None, start
        task.retry = task.retry + 1 if event == "retry" else 0
    record(task, task.state, task.step, at)


def legal_pair(before: str, after: str) -> bool:
    """Can some event take a task from state `before` to state `after` (base names)?"""
    return any(before in src and after in dst for src, dst in TABLE.values())


def replay(rows, initial: str | None = None) -> str:
    """Replay a task's (state, step) transition rows, in order, through the table from its
    creation state and return the final state name. A task is created `waiting`, or `ready`
    when it has no uncompleted upstream (creation writes no row): with initial None, the first
    creation state from which every row is allowed is taken. Raises IllegalTransition at the
    first pair no event allows."""
    rows = list(rows)
    error = None
    for start in ((initial,) if initial else (S.WAITING, S.READY)):
        try:
            return _replay(rows, start)
        except IllegalTransition as e:
            error = error or e
    raise error


def replay_outcomes(rows) -> set[str]:
    """The final states the rows can replay to, from either creation state."""
    out = set()
    for start in (S.WAITING, S.READY):
        try:
            out.add(replay(rows, start))
        except IllegalTransition:
            pass
    return out


def _replay(rows, initial: str) -> str:
    state, step = initial, None
    for new_state, new_step in rows:
        if not legal_pair(state, new_state):
            raise IllegalTransition(f"{S.format(state, step)} -> {S.format(new_state, new_step)} is not in the table")
        if state == S.STEP_STARTED and new_state == S.STEP_STARTED and (new_step or 0) <= (step or 0):
            raise IllegalTransition(f"{S.format(state, step)} -> {S.format(new_state, new_step)}: steps go forward")
        state, step = new_state, new_step
    return S.format(state, step)
