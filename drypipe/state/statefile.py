"""The `state.<state>` marker file of a task dir: exactly one, renamed atomically."""
from __future__ import annotations

import os

PREFIX = "state."


def read(task_dir: str) -> str | None:
    """The state named by the task dir's state file, or None when there is none."""
    try:
        with os.scandir(task_dir) as it:
            names = [e.name[len(PREFIX):] for e in it if e.name.startswith(PREFIX)]
    except FileNotFoundError:
        return None
    if not names:
        return None
    if len(names) > 1:
        from . import states
        names.sort(key=lambda n: _rank(states, n))
    return names[-1]


def _rank(states, name):
    try:
        base, step = states.parse(name)
    except ValueError:
        return (-1, 0)
    return (states.ALL.index(base) if base not in states.TERMINAL else 99, step or 0)


def write(task_dir: str, new_state: str, current: str | None = None) -> None:
    """Make `state.<new_state>` the one state file of task_dir (rename, or create if none)."""
    dst = os.path.join(task_dir, PREFIX + new_state)
    if current is not None:
        try:
            os.rename(os.path.join(task_dir, PREFIX + current), dst)
            return
        except FileNotFoundError:
            pass
    found = False
    with os.scandir(task_dir) as it:
        others = [e.path for e in it if e.name.startswith(PREFIX)]
    for path in others:
        if path == dst:
            found = True
        elif not found:
            os.rename(path, dst)
            found = True
        else:
            os.unlink(path)
    if not found:
        create(task_dir, new_state)


def create(task_dir: str, state: str) -> None:
    """The state file of a task dir that has none (just made)."""
    os.close(os.open(os.path.join(task_dir, PREFIX + state), os.O_CREAT | os.O_WRONLY, 0o644))


def names(task_dir: str) -> list[str]:
    """The states named by all state files of a task dir (normally exactly one)."""
    with os.scandir(task_dir) as it:
        return sorted(e.name[len(PREFIX):] for e in it if e.name.startswith(PREFIX))


def normalize(task_dir: str, state: str) -> None:
    """Leave exactly `state.<state>` in task_dir (a no-op, one scan, when it already is so)."""
    try:
        found = names(task_dir)
    except FileNotFoundError:
        return
    if found != [state]:
        write(task_dir, state, found[0] if len(found) == 1 else None)  # (one rename, no second scan)
