"""Alembic environment: DryPipe passes an open connection in config.attributes['connection']."""
from alembic import context

from drypipe.state.models import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("drypipe migrations run through drypipe.state.db.migrate(), not the alembic CLI")

context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
