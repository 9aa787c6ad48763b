"""Alembic environment: DryPipe passes an open connection in config.attributes['connection'].

The schema is defined once, by the models of drypipe/state/models.py; a revision is generated
from them. To write the next one after changing the models (then bump db.SCHEMA_REVISION):

    from alembic import command
    from alembic.config import Config
    from drypipe.state import db
    engine = db.make_engine("/tmp/head.db")
    db.migrate(engine)                      # a DB at the current head
    cfg = Config()
    cfg.set_main_option("script_location", db.migrations_dir())
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.revision(cfg, "what changed", autogenerate=True, rev_id="0002")

Autogenerate does not see the views `tasks`/`transitions` (the migrations create them with
op.execute): a revision that changes a column they read re-creates them. tests/test_schema.py
checks that the head schema is the models'.
"""
from alembic import context

from drypipe.state.models import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("drypipe migrations run through drypipe.state.db.migrate(), not the alembic CLI")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
