"""Parsing a task's `drypipe.log`: `<iso-time> <epoch> <event>` lines appended by its launcher."""
from __future__ import annotations

import os

from ..state import states as S


def parse_lines(text: str):
    """(transitions [(at, state, step)], last error message or None) from drypipe.log text."""
    transitions, message = [], None
    for line in text.splitlines():
        parts = line.split(" ", 2)
        if len(parts) < 3:
            continue
        event = parts[2]
        if event.startswith("error: "):
            message = event[len("error: "):]
            continue
        if not S.is_state_name(event):
            continue
        try:
            at = float(parts[1])
        except ValueError:
            continue
        state, step = S.parse(event)
        transitions.append((at, state, step))
    return transitions, message


def read_transitions(task_dir: str, offset: int):
    """Transitions logged since byte offset; returns (transitions, new offset, last error)."""
    try:
        with open(os.path.join(task_dir, "drypipe.log"), "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return [], offset, None
    end = data.rfind(b"\n") + 1
    transitions, message = parse_lines(data[:end].decode("utf-8", "replace"))
    return transitions, offset + end, message


def attempt_offset(task_dir: str, launched_at: float | None) -> int | None:
    """Byte offset in drypipe.log of the current attempt's `start` line: the last one logged
    at or after launched_at (the orchestrator records launched_at before the process exists).
    None when this attempt has not started (yet)."""
    start = last_start(task_dir)
    if start is None:
        return None
    offset, at, _ = start
    if launched_at is not None and at < launched_at - 2.0:  # an earlier attempt's start
        return None
    return offset


def last_start(task_dir: str):
    """(byte offset, time, pid) of the last `start` line of drypipe.log, or None."""
    try:
        with open(os.path.join(task_dir, "drypipe.log"), "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    i = data.rfind(b" start step=")
    if i == -1:
        return None
    line_start = data.rfind(b"\n", 0, i) + 1
    line = data[line_start:data.find(b"\n", i) if data.find(b"\n", i) != -1 else len(data)].decode("utf-8", "replace")
    try:
        at = float(line.split(" ")[1])
        pid = int(line.split(" pid=")[1].split(" ")[0])
    except (IndexError, ValueError):
        return None
    return line_start, at, pid
