"""Initial schema: tasks, their transitions and output variables; the `tasks`/`transitions` views.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ISO = "strftime('%Y-%m-%dT%H:%M:%fZ', {0}, 'unixepoch')"


def upgrade() -> None:
    op.create_table(
        "instance_meta",
        sa.Column("name", sa.String, primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "task_conf",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("json", sa.Text, nullable=False, unique=True),
    )
    op.create_table(
        "task",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String, nullable=False, unique=True),
        sa.Column("state", sa.String, nullable=False),
        sa.Column("step", sa.Integer, nullable=True),
        sa.Column("executer_type", sa.String, nullable=False),
        sa.Column("conf_id", sa.Integer, sa.ForeignKey("task_conf.id"), nullable=False),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("job_id", sa.String, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("launched_at", sa.Float, nullable=True),
        sa.Column("started_at", sa.Float, nullable=True),
        sa.Column("ended_at", sa.Float, nullable=True),
        sa.Column("message", sa.Text, nullable=True),
    )
    op.create_index("ix_task_state", "task", ["state"])
    op.create_table(
        "transition",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("task_id", sa.Integer, sa.ForeignKey("task.id"), nullable=False),
        sa.Column("state", sa.String, nullable=False),
        sa.Column("step", sa.Integer, nullable=True),
        sa.Column("at", sa.Float, nullable=False),
    )
    op.create_index("ix_transition_task_id", "transition", ["task_id"])
    op.create_table(
        "output_var",
        sa.Column("task_id", sa.Integer, sa.ForeignKey("task.id"), primary_key=True),
        sa.Column("name", sa.String, primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.execute(f"""
        CREATE VIEW tasks AS
        SELECT t.key AS key, t.state AS state, t.step AS step, t.executer_type AS executer_type,
               t.job_id AS job_id,
               {ISO.format('t.launched_at')} AS launched_at,
               {ISO.format('t.started_at')} AS started_at,
               {ISO.format('t.ended_at')} AS ended_at,
               round(t.ended_at - t.started_at, 3) AS duration_s
        FROM task t
    """)
    op.execute(f"""
        CREATE VIEW transitions AS
        SELECT t.key AS key, tr.state AS state, tr.step AS step, {ISO.format('tr.at')} AS at
        FROM transition tr JOIN task t ON t.id = tr.task_id
        ORDER BY tr.id
    """)


def downgrade() -> None:
    op.execute("DROP VIEW transitions")
    op.execute("DROP VIEW tasks")
    op.drop_table("output_var")
    op.drop_table("transition")
    op.drop_index("ix_task_state", "task")
    op.drop_table("task")
    op.drop_table("task_conf")
    op.drop_table("instance_meta")
