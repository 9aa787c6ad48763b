"""Pure renderers of what users read about an instance: state tables and execution times."""
from __future__ import annotations

import re
from collections import OrderedDict

from .state import states as S

_PREFIX_RE = re.compile(r"^(.*?)[._-]?\d+$")


def key_group(key: str) -> str:
    """Tasks are grouped by key prefix: 'task-for-chunk.12' -> 'task-for-chunk', 't1' -> 't'."""
    m = _PREFIX_RE.match(key)
    return m.group(1) if m and m.group(1) else key


def fmt_seconds(s: float | None) -> str:
    if s is None:
        return "-"
    if s < 60:
        return f"{s:.2f}s"
    m, sec = divmod(s, 60)
    if m < 60:
        return f"{int(m)}m{sec:04.1f}s"
    h, m = divmod(m, 60)
    return f"{int(h)}h{int(m):02d}m{int(sec):02d}s"


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows])


def state_counts_line(counts: dict[str, int]) -> str:
    order = list(S.ALL)
    return ", ".join(f"{counts[k]} {k}" for k in sorted(counts, key=order.index) if counts[k])


def render_states(tasks) -> str:
    """tasks: objects with key, state_name, attempt, duration, message."""
    rows = [[t.key, t.state_name, str(t.attempt or ""), fmt_seconds(t.duration), t.message or ""] for t in tasks]
    counts: dict[str, int] = {}
    for t in tasks:
        counts[t.state] = counts.get(t.state, 0) + 1
    return table(["task", "state", "attempt", "duration", "message"], rows) + \
        f"\n\n{len(tasks)} tasks: {state_counts_line(counts)}"


def step_durations(transitions) -> dict[int, float]:
    """Seconds spent in each step, from a task's ordered (state, step, at) transitions.

    A step lasts from its step-started.N to the next transition (the next step, or the end);
    a step run several times (restarts) adds up."""
    out: dict[int, float] = {}
    for (state, step, at), nxt in zip(transitions, transitions[1:]):
        if state == S.STEP_STARTED:
            out[step] = out.get(step, 0.0) + (nxt[2] - at)
    return out


def fmt_bytes(n: int | float | None) -> str:
    """212 MB, 1.5 GB (powers of 1024); '' when unknown."""
    if n is None:
        return ""
    value = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            break
        value /= 1024
    return f"{value:.0f} {unit}" if unit == "B" or value >= 10 else f"{value:.1f} {unit}"


def last_attempts(attempt_rows) -> dict[str, dict]:
    """Task key -> its last attempt, from rows of the `attempts` view (name, attempt, ...)."""
    out: dict[str, dict] = {}
    for r in attempt_rows:
        prev = out.get(r["name"])
        if prev is None or r["attempt"] >= prev["attempt"]:
            out[r["name"]] = r
    return out


def read_attempts(instance_dir: str) -> list[dict]:
    """The rows of an instance's `attempts` view that render_execution_times uses; none when
    the database has no such view."""
    import sqlite3
    from sqlalchemy.exc import OperationalError
    from .state import db
    engine = db.open_db(instance_dir, create=False, upgrade=False, readonly=True)
    try:
        with engine.connect() as c:
            res = c.exec_driver_sql("SELECT name, attempt, cpu_user, cpu_sys, peak_rss FROM attempts")
            return [dict(zip(res.keys(), r)) for r in res]
    except (OperationalError, sqlite3.OperationalError):
        return []
    finally:
        engine.dispose()


def attempt_cpu(a: dict | None) -> float | None:
    """CPU seconds (user + sys) of an attempt; None when unknown."""
    if a is None or (a.get("cpu_user") is None and a.get("cpu_sys") is None):
        return None
    return (a.get("cpu_user") or 0.0) + (a.get("cpu_sys") or 0.0)


def render_execution_times(tasks, transitions_by_key, attempts=None) -> str:
    """Per task and per step durations, CPU time (user + sys) and peak memory of its last
    attempt, grouped by key prefix, with totals per group and overall.

    attempts: rows of the `attempts` view (Instance.attempts()); read from the tasks' instance
    when not given. CPU and memory are blank when unknown."""
    if attempts is None:
        attempts = read_attempts(tasks[0].instance_dir) if tasks and hasattr(tasks[0], "instance_dir") else []
    last = last_attempts(attempts)
    groups: OrderedDict[str, list] = OrderedDict()
    for t in tasks:
        groups.setdefault(key_group(t.key), []).append(t)
    rows = []
    grand = 0.0
    for g, ts in groups.items():
        total = 0.0
        cpus, peaks = [], []
        for t in ts:
            steps = step_durations(transitions_by_key.get(t.key, []))
            d = t.duration
            total += d or 0.0
            step_txt = " ".join(f"{n}:{fmt_seconds(s)}" for n, s in sorted(steps.items()))
            a = last.get(t.key)
            cpu = attempt_cpu(a)
            peak = a.get("peak_rss") if a else None
            if cpu is not None:
                cpus.append(cpu)
            if peak is not None:
                peaks.append(peak)
            rows.append([t.key, t.state_name, fmt_seconds(d), step_txt,
                         "" if cpu is None else fmt_seconds(cpu), fmt_bytes(peak)])
        grand += total
        known = [t.duration for t in ts if t.duration is not None]
        mean = sum(known) / len(known) if known else None
        rows.append([f"  {g}: {len(ts)} tasks", "", fmt_seconds(total),
                     f"mean {fmt_seconds(mean)}, max {fmt_seconds(max(known) if known else None)}",
                     fmt_seconds(sum(cpus)) if cpus else "", f"max {fmt_bytes(max(peaks))}" if peaks else ""])
    out = table(["task", "state", "duration", "steps (n:duration)", "cpu", "peak mem"], rows)
    return out + f"\n\ntotal: {len(tasks)} tasks, {fmt_seconds(grand)} of task time"
