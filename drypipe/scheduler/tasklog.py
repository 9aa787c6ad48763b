"""Parsing a task's `drypipe.log`: `<iso-time> <epoch> <event>` lines appended by its launcher."""
from __future__ import annotations

import os

from ..state import states as S


def parse_lines(text: str):
    """(transitions [(at, state, step)], last error message or None, last usage or None) from
    drypipe.log text."""
    transitions, message, usage = [], None, None
    for line in text.splitlines():
        parts = line.split(" ", 2)
        if len(parts) < 3:
            continue
        event = parts[2]
        if event.startswith("error: "):
            message = event[len("error: "):]
            continue
        if event.startswith("usage "):
            usage = parse_usage(event)
            continue
        if not S.is_state_name(event):
            continue
        try:
            at = float(parts[1])
        except ValueError:
            continue
        state, step = S.parse(event)
        transitions.append((at, state, step))
    return transitions, message, usage


_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def parse_usage(event: str) -> dict:
    """`usage exit=3 host=n1 ticks=U,S peak_rss=B` (what the launcher read from /proc and its
    cgroup at the end of an attempt) -> {"exit": 3, "host": "n1", "cpu_user": s, "cpu_sys": s,
    "peak_rss": B}; fields that are missing or garbled are left out."""
    out: dict = {}
    for word in event.split()[1:]:
        name, _, value = word.partition("=")
        try:
            if name == "exit":
                out["exit"] = int(value)
            elif name == "host":
                out["host"] = value
            elif name == "ticks":
                user, sys_ = value.split(",")
                out["cpu_user"], out["cpu_sys"] = int(user) / _CLK_TCK, int(sys_) / _CLK_TCK
            elif name in ("peak_rss", "rchar", "wchar", "read_bytes", "write_bytes"):
                out[name] = int(value)
            elif name == "peak_rss_source":
                out[name] = value
        except ValueError:
            continue
    if "peak_rss" in out:
        out.setdefault("peak_rss_source", "cgroup")
    return out


def read_transitions(task_dir: str, offset: int):
    """Transitions logged since byte offset; returns (transitions, new offset, last error, usage)."""
    # (os.open and pread: open() adds an fstat, an ioctl and lseeks, and this runs twice a task)
    try:
        fd = os.open(os.path.join(task_dir, "drypipe.log"), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return [], offset, None, None
    try:
        chunks = []
        pos = offset
        while True:
            chunk = os.pread(fd, 65536, pos)
            if not chunk:
                break
            chunks.append(chunk)
            pos += len(chunk)
            if len(chunk) < 65536:
                break
    finally:
        os.close(fd)
    data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    end = data.rfind(b"\n") + 1
    transitions, message, usage = parse_lines(data[:end].decode("utf-8", "replace"))
    return transitions, offset + end, message, usage


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
