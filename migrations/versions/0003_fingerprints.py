"""Fingerprints: what each attempt ran with, to say why a completed task is out of date.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06

The table is what `alembic revision --autogenerate` writes for drypipe/state/models.py's
FingerprintRow. Attempts made before it have none: their tasks are never reported out of date
(nothing to compare with) until they run again.
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


def downgrade() -> None:
    op.drop_table('fingerprint')
