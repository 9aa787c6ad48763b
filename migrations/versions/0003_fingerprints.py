"""Fingerprints: what each attempt ran with, to say why a completed task is out of date;
each task's attempt count and automatic retries.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06

The table is what `alembic revision --autogenerate` writes for drypipe/state/models.py's
FingerprintRow. Attempts made before it have none: their tasks are never reported out of date
(nothing to compare with) until they run again. task.attempt is filled from the attempt table;
task.retry (automatic retries of TaskConf(retries=N) since a person last started it) starts at 0.
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('fingerprint',
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('json', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['task_id'], ['task.id'], ),
    sa.PrimaryKeyConstraint('task_id', 'attempt')
    )
    # plain ALTER TABLE (not a batch copy of the table, which the views over it would break)
    op.add_column('task', sa.Column('attempt', sa.Integer(), server_default='0', nullable=False))
    op.add_column('task', sa.Column('retry', sa.Integer(), server_default='0', nullable=False))
    op.execute("UPDATE task SET attempt = coalesce((SELECT max(a.attempt) FROM attempt a "
               "WHERE a.task_id = task.id), 0)")


def downgrade() -> None:
    op.drop_column('task', 'retry')  # ALTER TABLE DROP COLUMN: SQLite 3.35+
    op.drop_column('task', 'attempt')
    op.drop_table('fingerprint')
