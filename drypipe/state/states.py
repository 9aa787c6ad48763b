"""Task states: names, parsing of `state.<name>` files, and what each means for scheduling."""
from __future__ import annotations

import re

WAITING = "waiting"
READY = "ready"
LAUNCHED = "launched"
STEP_STARTED = "step-started"
COMPLETED = "completed"
FAILED = "failed"
KILLED = "killed"
TIMED_OUT = "timed-out"

ALL = (WAITING, READY, LAUNCHED, STEP_STARTED, COMPLETED, FAILED, KILLED, TIMED_OUT)
WITH_STEP = frozenset((STEP_STARTED, FAILED, KILLED, TIMED_OUT))
ACTIVE = frozenset((LAUNCHED, STEP_STARTED))
FAILURES = frozenset((FAILED, KILLED, TIMED_OUT))
TERMINAL = FAILURES | {COMPLETED}

_STATE_RE = re.compile(r"(waiting|ready|launched|completed)\Z|(step-started|failed|killed|timed-out)\.(\d+)\Z")


def parse(name: str) -> tuple[str, int | None]:
    """'failed.2' -> ('failed', 2); 'completed' -> ('completed', None). ValueError if not a state."""
    m = _STATE_RE.match(name)
    if m is None:
        raise ValueError(f"not a task state: {name!r}")
    if m.group(1):
        return m.group(1), None
    return m.group(2), int(m.group(3))


def is_state_name(name: str) -> bool:
    return _STATE_RE.match(name) is not None


def format(state: str, step: int | None) -> str:  # noqa: A001 - mirrors parse()
    if state in WITH_STEP:
        return f"{state}.{step or 0}"
    return state
