"""Attempts: one row per launch of a task, with what it used; the `attempts` view.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06

The table is what `alembic revision --autogenerate` wrote for drypipe/state/models.py's
attempt table. The upgrade also rebuilds the attempts of an instance made before it, from its
`transition` rows (every `launched` opens an attempt; its first `step-started` is its start; a
terminal state closes it), without resource figures (they were not measured then).

The view `attempts` presents them with Nextflow's trace column names (decisions.md, "Reports,
traces and the DAG"): times ISO-8601 UTC, durations in ms, memory in bytes; its SQL is here
and nowhere else, frozen with this revision like 0001's views.
"""
import hashlib
import os

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

ISO = "strftime('%Y-%m-%dT%H:%M:%fZ', {0}, 'unixepoch')"
TERMINAL = ("completed", "failed", "killed", "timed-out")


def upgrade() -> None:
    op.create_table('attempt',
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('executer', sa.String(), nullable=False),
    sa.Column('native_id', sa.String(), nullable=True),
    sa.Column('host', sa.String(), nullable=True),
    sa.Column('hash', sa.String(), nullable=False),
    sa.Column('workdir', sa.Text(), nullable=False),
    sa.Column('status', sa.String(), nullable=False),
    sa.Column('exit', sa.Integer(), nullable=True),
    sa.Column('step', sa.Integer(), nullable=True),
    sa.Column('submit', sa.Float(), nullable=False),
    sa.Column('start', sa.Float(), nullable=True),
    sa.Column('complete', sa.Float(), nullable=True),
    sa.Column('cpu_user', sa.Float(), nullable=True),
    sa.Column('cpu_sys', sa.Float(), nullable=True),
    sa.Column('peak_rss', sa.Integer(), nullable=True),
    sa.Column('peak_rss_source', sa.String(), nullable=True),
    sa.Column('rchar', sa.Integer(), nullable=True),
    sa.Column('wchar', sa.Integer(), nullable=True),
    sa.Column('read_bytes', sa.Integer(), nullable=True),
    sa.Column('write_bytes', sa.Integer(), nullable=True),
    sa.Column('slurm_state', sa.String(), nullable=True),
    sa.Column('req_cpus', sa.Integer(), nullable=True),
    sa.Column('req_mem', sa.Integer(), nullable=True),
    sa.Column('req_time', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['task_id'], ['task.id'], ),
    sa.PrimaryKeyConstraint('task_id', 'attempt')
    )
    _rebuild_attempts()
    op.execute(f"""
        CREATE VIEW attempts AS
        SELECT a.task_id AS task_id, a.hash AS hash, a.native_id AS native_id, t.key AS name,
               a.status AS status, a.exit AS exit,
               {ISO.format('a.submit')} AS submit,
               {ISO.format('a.start')} AS start,
               {ISO.format('a.complete')} AS complete,
               CAST(round((a.complete - a.submit) * 1000) AS INTEGER) AS duration,
               CAST(round((a.complete - a.start) * 1000) AS INTEGER) AS realtime,
               CASE WHEN a.complete > a.start AND a.cpu_user IS NOT NULL
                    THEN round(100.0 * (a.cpu_user + coalesce(a.cpu_sys, 0)) / (a.complete - a.start), 1)
               END AS "%cpu",
               a.peak_rss AS peak_rss, a.rchar AS rchar, a.wchar AS wchar, a.attempt AS attempt,
               a.workdir AS workdir, a.host AS host, a.executer AS executer, a.step AS step,
               a.cpu_user AS cpu_user, a.cpu_sys AS cpu_sys, a.read_bytes AS read_bytes,
               a.write_bytes AS write_bytes, a.peak_rss_source AS peak_rss_source,
               a.slurm_state AS slurm_state, a.req_cpus AS req_cpus, a.req_mem AS req_mem,
               a.req_time AS req_time, a.submit AS submit_epoch, a.start AS start_epoch,
               a.complete AS complete_epoch
        FROM attempt a JOIN task t ON t.id = a.task_id
        ORDER BY a.task_id, a.attempt
    """)


def _rebuild_attempts() -> None:
    """The attempts of an instance made before 0002, from its transitions."""
    conn = op.get_bind()
    path = conn.engine.url.database or ""
    instance_dir = os.path.dirname(os.path.dirname(os.path.abspath(path))) if path else ""
    tasks = {tid: (key, executer, job_id, spec) for tid, key, executer, job_id, spec in
             conn.exec_driver_sql("SELECT id, key, executer_type, job_id, spec FROM task")}
    rows: list[dict] = []
    count: dict[int, int] = {}  # task id -> attempts so far
    current: dict[int, dict] = {}  # task id -> its attempt still running
    for tid, state, step, at in conn.exec_driver_sql(
            "SELECT task_id, state, step, at FROM transition ORDER BY id"):
        a = current.get(tid)
        if state == "launched":
            key, executer, _, spec = tasks[tid]
            count[tid] = count.get(tid, 0) + 1
            a = current[tid] = {"task_id": tid, "attempt": count[tid], "submit": at, "start": None,
                                "status": "running", "step": None, "complete": None, "executer": executer,
                                "native_id": None, "hash": hashlib.sha1(spec.encode()).hexdigest()[:8],
                                "workdir": os.path.join(instance_dir, "output", key)}
            rows.append(a)
        elif a is None:
            continue
        elif state == "step-started":
            a["start"] = a["start"] if a["start"] is not None else at
        elif state in TERMINAL:
            a.update(status=state, step=step, complete=at)
            del current[tid]
        elif state == "ready":  # launched -> ready: a launch that never happened
            rows.remove(a)
            count[tid] -= 1
            del current[tid]
    for tid, a in current.items():  # still running: its job id is the task's
        a["native_id"] = tasks[tid][2]
    if rows:
        conn.exec_driver_sql(
            "INSERT INTO attempt (task_id, attempt, executer, native_id, hash, workdir, status, step, "
            "submit, start, complete) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(a["task_id"], a["attempt"], a["executer"], a["native_id"], a["hash"], a["workdir"], a["status"],
              a["step"], a["submit"], a["start"], a["complete"]) for a in rows])


def downgrade() -> None:
    op.execute("DROP VIEW attempts")
    op.drop_table('attempt')
