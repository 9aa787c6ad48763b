"""`drypipe status` at any size: the Progress of an instance computed by SQLite from its task
table, so that Python handles a few dozen rows whatever the number of tasks (100,000 tasks in
a tenth of a second, where building a record per task took a second and a half).

It computes what progress.compute_progress computes from the task records, with the same rules
(a key's group is the part before its first dot; a duration runs from the first step, else from
the launch, to the end; the ETA of progress.estimate_eta); tests/test_progress.py checks that the
two agree. Only the first `limit` groups (in the order of their first task) are returned, with
the number of groups."""
from __future__ import annotations

from ..state import states as S
from .progress import MAX_FAILED, MAX_GROUPS, GroupStats, Progress, Summary

_ACTIVE = ", ".join(f"'{s}'" for s in sorted(S.ACTIVE))
_FAILURES = ", ".join(f"'{s}'" for s in sorted(S.FAILURES))
_GROUPS = f"""
WITH d AS (
  SELECT id, CASE WHEN instr(key, '.') > 0 THEN substr(key, 1, instr(key, '.') - 1) ELSE key END AS name,
         state, CASE WHEN state = 'completed' THEN ended_at - coalesce(started_at, launched_at) END AS dur
  FROM task),
g AS MATERIALIZED (
  SELECT name, min(id) AS first, count(*) AS total, sum(state = 'waiting') AS waiting,
         sum(state = 'ready') AS ready, sum(state IN ({_ACTIVE})) AS running,
         sum(state = 'completed') AS completed, sum(state IN ({_FAILURES})) AS failed,
         coalesce(sum(max(0.0, dur)), 0.0) AS d, count(dur) AS m
  FROM d GROUP BY name)
SELECT * FROM (SELECT 0, name, total, waiting, ready, running, completed, failed, first
               FROM g ORDER BY first LIMIT ?)
UNION ALL
SELECT 1, count(*), sum(total - completed - failed), sum(m), sum(d),
       coalesce(sum(CASE WHEN m > 0 THEN (total - completed - failed) * d / m END), 0.0),
       coalesce(sum(CASE WHEN m = 0 THEN total - completed - failed END), 0), NULL, NULL
FROM g"""


def snapshot(execute, now: float, make_task, columns: str, limit: int = MAX_GROUPS) -> Progress:
    """execute(sql, params) -> rows, on the instance's database; make_task(row) -> the record of
    a running or failed task from a row of `columns` (of the task table)."""
    counts = {state: n for state, n in execute("SELECT state, count(*) FROM task GROUP BY state", ())}
    running_rows = execute(f"SELECT {columns} FROM task WHERE state IN ({_ACTIVE}) ORDER BY id", ())
    failed_rows = execute(f"SELECT {columns} FROM task WHERE state IN ({_FAILURES}) ORDER BY id LIMIT ?",
                          (MAX_FAILED,))
    groups: dict[str, GroupStats] = {}
    n_groups, eta_terms = 0, None
    for row in execute(_GROUPS, (limit,)):
        if row[0] == 0:
            _, name, _total, waiting, ready, running, completed, failed, _ = row
            groups[name] = GroupStats({S.WAITING: waiting, S.READY: ready, S.LAUNCHED: running,
                                       S.COMPLETED: completed, S.FAILED: failed})
        else:
            n_groups, eta_terms = row[1], row[2:7]
    running = []
    for r in running_rows:
        t = make_task(r)
        start = t.started_at if t.started_at is not None else t.launched_at
        running.append((t.key, t.state_name, max(0.0, now - start) if start is not None else 0.0))
    running.sort(key=lambda r: -r[2])
    n_failed = sum(counts.get(s, 0) for s in S.FAILURES)
    summary = Summary(sum(counts.values()), counts.get(S.COMPLETED, 0), len(running), n_failed,
                      _eta(eta_terms, len(running)))
    return Progress(now, summary, counts, groups, running, [make_task(r) for r in failed_rows], n_groups)


def _eta(terms, running: int) -> float | None:
    """progress.estimate_eta from the sums over the groups."""
    if terms is None:
        return 0.0
    remaining, measured, durations, work_measured, remaining_unmeasured = terms
    if not remaining:
        return 0.0
    if not measured:
        return None
    work = work_measured + remaining_unmeasured * (durations / measured)
    return work / max(1, running)
