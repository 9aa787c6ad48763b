"""The progress of an instance: counts per key group and state, what runs and for how long, and
an ETA from the durations already observed. What `drypipe status` and `drypipe run` show.

Pure functions over task records (drypipe.api.TaskInfo, the orchestrator's graph nodes: anything
with key, state, step, launched_at, started_at and ended_at), and ProgressTracker, the same
summary kept up to date one event at a time for `drypipe run` (O(1) per event and per summary).

A key group is the part of a key before its first '.' ('align.12' -> 'align'); a key without
'.' is its own group.

The ETA: per group, the mean duration of its completed tasks (the mean over all groups while it
has none) times its tasks still to end (neither completed nor failed), summed over the groups and
divided by the tasks running at once (at least 1); unknown before any task completed. During a
run (ProgressTracker), never less than the run's own pace promises: once as many tasks ended as
run at once, the tasks left times the time each ending took so far (with short tasks, launching
them is what takes the time, which their durations do not show)."""
from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field

from ..reports import fmt_seconds, state_counts_line, table
from ..state import states as S

TOP_RUNNING = 10  # running tasks listed by status, the longest running first
MAX_FAILED = 20  # failed tasks listed by status
MAX_GROUPS = 30  # rows of the group table
GROUP_COLUMNS = ("waiting", "ready", "running", "completed", "failed")


def group_of(key: str) -> str:
    """'align.12' -> 'align'; 'merge' -> 'merge'."""
    return key.partition(".")[0]


def column_of(state: str) -> str:
    """The column of the group table a state is counted in: launched and step-started are
    'running', failed, killed and timed-out 'failed'."""
    if state in S.ACTIVE:
        return "running"
    if state in S.FAILURES:
        return "failed"
    return state


def duration_of(t) -> float | None:
    """Seconds from a task's start (its first step; its launch when unknown) to its end."""
    start = t.started_at if t.started_at is not None else t.launched_at
    if start is None or t.ended_at is None:
        return None
    return max(0.0, t.ended_at - start)


def estimate_eta(groups: dict[str, tuple[int, float, int]], running: int) -> float | None:
    """Seconds until every task ended. groups: name -> (its tasks still to end, the sum of the
    durations of its completed tasks, how many durations that sums); running: tasks running now.
    None (unknown) before any duration was observed, unless nothing is left to run."""
    if sum(r for r, _, _ in groups.values()) == 0:
        return 0.0
    measured = sum(m for _, _, m in groups.values())
    if measured == 0:
        return None
    mean = sum(d for _, d, _ in groups.values()) / measured
    work = sum(r * (d / m if m else mean) for r, d, m in groups.values())
    return work / max(1, running)


# -- a snapshot, from every task of an instance (drypipe status) -------------------------------

@dataclass(frozen=True)
class Summary:
    total: int
    completed: int
    running: int
    failed: int  # failed, killed or timed-out
    eta: float | None  # seconds; None: unknown

    @property
    def percent(self) -> int:
        return int(100 * self.completed / self.total) if self.total else 100


@dataclass
class GroupStats:
    """A key group: its tasks per state, and the durations of its completed tasks."""
    counts: dict[str, int] = field(default_factory=dict)
    durations: float = 0.0
    measured: int = 0

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def remaining(self) -> int:
        c = self.counts
        return self.total - c.get(S.COMPLETED, 0) - sum(c.get(s, 0) for s in S.FAILURES)

    def column(self, name: str) -> int:
        return sum(n for s, n in self.counts.items() if column_of(s) == name)


@dataclass
class Progress:
    now: float  # time.time() of the snapshot
    summary: Summary
    counts: dict[str, int]  # state -> tasks
    groups: dict[str, GroupStats]  # in the order of their first task
    running: list[tuple[str, str, float]]  # (key, state name, seconds running), longest first
    failed: list  # the task records that did not complete, in task order (the first MAX_FAILED, at least)
    n_groups: int | None = None  # groups in all, when `groups` holds only the first ones


def compute_progress(tasks, now: float) -> Progress:
    """The progress of an instance from all its tasks (in creation order), at time `now`."""
    counts: dict[str, int] = {}
    groups: dict[str, GroupStats] = {}
    running, failed = [], []
    for t in tasks:
        state = t.state
        counts[state] = counts.get(state, 0) + 1
        g = groups.get(group_of(t.key))
        if g is None:
            g = groups[group_of(t.key)] = GroupStats()
        g.counts[state] = g.counts.get(state, 0) + 1
        if state == S.COMPLETED:
            d = duration_of(t)
            if d is not None:
                g.durations += d
                g.measured += 1
        elif state in S.ACTIVE:
            start = t.started_at if t.started_at is not None else t.launched_at
            running.append((t.key, t.state_name, max(0.0, now - start) if start is not None else 0.0))
        elif state in S.FAILURES:
            failed.append(t)
    running.sort(key=lambda r: -r[2])  # stable: equal times keep the task order
    eta = estimate_eta({n: (g.remaining, g.durations, g.measured) for n, g in groups.items()}, len(running))
    summary = Summary(sum(counts.values()), counts.get(S.COMPLETED, 0), len(running), len(failed), eta)
    return Progress(now, summary, counts, groups, running, failed)


# -- kept up to date from the orchestrator's events (drypipe run) ------------------------------

class ProgressTracker:
    """The Summary of a run, updated one task at a time: add() each task once (when the run
    starts, or when the generator yields it), ended() when one of them ends. Both are O(1), and
    so is summary(): the ETA's sum over the groups is kept up to date as they change."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.started = clock()
        self.ended_here = 0  # tasks that ended during this run (ended())
        self.total = self.completed = self.failed = 0
        self.remaining = 0
        self._groups: dict[str, list] = {}  # name -> [remaining, sum of durations, measured]
        self._durations = 0.0
        self._measured = 0
        self._unmeasured = 0  # remaining tasks of the groups with no duration yet
        self._work = 0.0  # the groups with durations: sum of remaining * mean duration

    @classmethod
    def from_tasks(cls, tasks) -> ProgressTracker:
        tracker = cls()
        for t in tasks:
            tracker.add(t)
        return tracker

    def add(self, t) -> None:
        """A task not seen before, in its current state."""
        g = self._group(t.key)
        self._account(g, -1)
        self.total += 1
        if not self._end(g, t):
            g[0] += 1
            self.remaining += 1
        self._account(g, 1)

    def ended(self, t) -> None:
        """A task added before it ended has ended (t.state: completed, failed, killed, ...)."""
        if t.state not in S.TERMINAL:
            return
        g = self._group(t.key)
        self._account(g, -1)
        if g[0] > 0:
            g[0] -= 1
            self.remaining -= 1
        self.ended_here += 1
        self._end(g, t)
        self._account(g, 1)

    def summary(self, running: int) -> Summary:
        return Summary(self.total, self.completed, running, self.failed, self.eta(running))

    def summary_of_counts(self, counts: dict[str, int]) -> Summary:
        """The Summary of tasks counted per state (what a run ended with), with this ETA."""
        total = sum(counts.values())
        completed = counts.get(S.COMPLETED, 0)
        failed = sum(counts.get(s, 0) for s in S.FAILURES)
        running = sum(counts.get(s, 0) for s in S.ACTIVE)
        eta = self.eta(running) if completed + failed < total else 0.0
        return Summary(total, completed, running, failed, eta)

    def eta(self, running: int) -> float | None:
        if self.remaining <= 0:
            return 0.0
        if self._measured == 0:
            return None
        work = max(0.0, self._work) + self._unmeasured * self._durations / self._measured
        eta = work / max(1, running)
        if self.ended_here >= max(1, running):  # the pace of this run so far
            eta = max(eta, self.remaining * (self.clock() - self.started) / self.ended_here)
        return eta

    def _group(self, key: str) -> list:
        name = group_of(key)
        g = self._groups.get(name)
        if g is None:
            g = self._groups[name] = [0, 0.0, 0]
        return g

    def _end(self, g: list, t) -> bool:
        """Count t if it ended (the caller takes g's share of the work out and back in)."""
        state = t.state
        if state == S.COMPLETED:
            self.completed += 1
            d = duration_of(t)
            if d is not None:
                g[1] += d
                g[2] += 1
                self._durations += d
                self._measured += 1
            return True
        if state in S.FAILURES:
            self.failed += 1
            return True
        return False

    def _account(self, g: list, sign: int) -> None:
        """Add (sign 1) or remove (-1) group g's share of the estimated work."""
        if g[2]:
            self._work += sign * g[0] * g[1] / g[2]
        else:
            self._unmeasured += sign * g[0]


def newest(nodes: dict, n: int):
    """The n last values of a dict (the tasks last added to the orchestrator's graph)."""
    return itertools.islice(reversed(nodes.values()), n)


# -- what is shown ---------------------------------------------------------------------------

def fmt_eta(seconds: float | None) -> str:
    """None -> 'unknown', 42.3 -> '42s', 130 -> '2m10s', 7380 -> '2h03m'."""
    if seconds is None:
        return "unknown"
    s = int(seconds + 0.5)
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m"


def summary_line(s: Summary, percent: bool = False) -> str:
    """'42/100 completed, 3 running, 1 failed, ETA 2m10s'."""
    done = f"{s.completed}/{s.total} completed" + (f" ({s.percent}%)" if percent else "")
    return f"{done}, {s.running} running, {s.failed} failed, ETA {fmt_eta(s.eta)}"


def clock_line(s: Summary, now: float) -> str:
    """The line of `status --watch` when not on a terminal: '12:01:05 42/100 completed, ...'."""
    return time.strftime("%H:%M:%S", time.localtime(now)) + " " + summary_line(s)


def run_line(s: Summary, elapsed: float) -> str:
    """The progress line of `drypipe run`: '[   12.3s] 42/100 completed, ...'."""
    return f"[{elapsed:7.1f}s] {summary_line(s)}"


def header_line(instance_dir: str, pid: int | None) -> str:
    return f"{instance_dir}: " + (f"orchestrator running (pid {pid})" if pid else "no orchestrator running")


def group_table(groups: dict[str, GroupStats], limit: int = MAX_GROUPS, n_groups: int | None = None) -> str:
    """Tasks per key group and state (launched and step-started count as running, failed,
    killed and timed-out as failed); n_groups: how many there are, when groups has the first only."""
    names = list(groups)
    n_groups = len(names) if n_groups is None else n_groups
    rows = [[n, str(groups[n].total)] + [str(groups[n].column(c)) for c in GROUP_COLUMNS]
            for n in names[:limit]]
    text = table(["group", "total", *GROUP_COLUMNS], rows)
    if n_groups > limit:
        text += f"\n... and {n_groups - limit} more groups"
    return text


def status_text(p: Progress, instance_dir: str, pid: int | None, top: int = TOP_RUNNING) -> str:
    """What `drypipe status` prints: the orchestrator, counts per state, the running tasks (the
    longest running first), the failed ones, the group table, and done/total with the ETA."""
    lines = [header_line(instance_dir, pid), f"{p.summary.total} tasks: {state_counts_line(p.counts)}"]
    if p.running:
        lines.append(f"running ({len(p.running)}):")
        lines += [f"  {key}  {state}  {fmt_seconds(elapsed)}" for key, state, elapsed in p.running[:top]]
        if len(p.running) > top:
            lines.append(f"  ... and {len(p.running) - top} more")
    if p.failed:
        n_failed = p.summary.failed
        lines.append(f"failed ({n_failed}):")
        lines += [f"  {t.key}  {t.state_name}  {t.message or ''}  {t.out_log}" for t in p.failed[:MAX_FAILED]]
        if n_failed > MAX_FAILED:
            lines.append(f"  ... and {n_failed - MAX_FAILED} more")
    if p.groups:
        lines += ["", group_table(p.groups, n_groups=p.n_groups)]
    lines += ["", summary_line(p.summary, percent=True)]
    return "\n".join(lines)
