"""Initial schema: tasks, their transitions and output variables; the `tasks`/`transitions` views.

Revision ID: 0001
Revises:
Create Date: 2026-11-26

The tables and indexes are what `alembic revision --autogenerate` writes for the models of
drypipe/state/models.py against an empty database (the recipe is in migrations/env.py), with two
adjustments that keep the DDL stored in `sqlite_master` byte for byte that of the databases made
by DryPipe 0.1.0: each table's constraints are listed primary key, unique, foreign key (the order
0.1.0 wrote them in), and `transition` is created before `output_var`. tests/test_schema.py checks
both that this script matches the models and that its DDL is 0.1.0's.

The two views exist for users who audit an instance with plain SQL; nothing in DryPipe reads them
and the models do not describe them, so their SQL is written here and nowhere else. It is frozen
with this revision, like the rest of this script: a later revision that changes a view drops and
re-creates it with its own SQL text (and its downgrade restores this one).
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ISO = "strftime('%Y-%m-%dT%H:%M:%fZ', {0}, 'unixepoch')"


def upgrade() -> None:
    op.create_table('instance_meta',
    sa.Column('name', sa.String(), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('task_conf',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('json', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('json')
    )
    op.create_table('task',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(), nullable=False),
    sa.Column('state', sa.String(), nullable=False),
    sa.Column('step', sa.Integer(), nullable=True),
    sa.Column('executer_type', sa.String(), nullable=False),
    sa.Column('conf_id', sa.Integer(), nullable=False),
    sa.Column('spec', sa.Text(), nullable=False),
    sa.Column('job_id', sa.String(), nullable=True),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('launched_at', sa.Float(), nullable=True),
    sa.Column('started_at', sa.Float(), nullable=True),
    sa.Column('ended_at', sa.Float(), nullable=True),
    sa.Column('message', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key'),
    sa.ForeignKeyConstraint(['conf_id'], ['task_conf.id'], )
    )
    with op.batch_alter_table('task', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_task_state'), ['state'], unique=False)

    op.create_table('transition',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(), nullable=False),
    sa.Column('step', sa.Integer(), nullable=True),
    sa.Column('at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.ForeignKeyConstraint(['task_id'], ['task.id'], )
    )
    with op.batch_alter_table('transition', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_transition_task_id'), ['task_id'], unique=False)

    op.create_table('output_var',
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('task_id', 'name'),
    sa.ForeignKeyConstraint(['task_id'], ['task.id'], )
    )

    # the views: not in the models (see the docstring); this text is the one 0.1.0 stored
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
    op.drop_table('output_var')
    with op.batch_alter_table('transition', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_transition_task_id'))

    op.drop_table('transition')
    with op.batch_alter_table('task', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_task_state'))

    op.drop_table('task')
    op.drop_table('task_conf')
    op.drop_table('instance_meta')
