"""The tables of the per-instance database `.drypipe/drypipe.db` (SQLAlchemy Core): THE definition
of its tables, columns, types, indexes and constraints.

Everything else is derived from them:
- the Alembic migrations in migrations/versions/ are generated from them (`alembic revision
  --autogenerate`, recipe in migrations/env.py), so a change here goes with a new revision and a
  new db.SCHEMA_REVISION; tests/test_schema.py fails while the migrated schema and these tables
  differ;
- the orchestrator's batched writer (store.py) compiles its INSERT/UPDATE/DELETE texts from these
  tables once, at import: a renamed column renames it there too.

Core tables, not ORM classes: nothing maps rows to objects (the orchestrator reads tuples), and
`sqlalchemy.orm` alone costs ~0.1 s of import at every `drypipe` start.

Times are UNIX epoch seconds (REAL, UTC); the `tasks` and `transitions` views present them
as ISO-8601 text for users who audit with plain SQL. The views are not modelled (nothing in
DryPipe reads them): their SQL is in the migration that creates them, 0001_initial.py, only.
"""
from __future__ import annotations

from sqlalchemy import Column, Float, ForeignKey, Integer, MetaData, String, Table, Text

metadata = MetaData()


def _req(name: str, type_, *args, **kw) -> Column:
    return Column(name, type_, *args, nullable=False, **kw)


def _opt(name: str, type_) -> Column:
    return Column(name, type_, nullable=True)


# Facts about the instance: the generator it was run with, its code dir, ...
meta_table = Table(
    "instance_meta", metadata,
    Column("name", String, primary_key=True),
    _req("value", Text))

# Distinct TaskConfs, as JSON; tasks share them.
task_conf_table = Table(
    "task_conf", metadata,
    Column("id", Integer, primary_key=True),
    _req("json", Text, unique=True))

task_table = Table(
    "task", metadata,
    Column("id", Integer, primary_key=True),
    _req("key", String, unique=True),
    _req("state", String, index=True),
    _opt("step", Integer),
    _req("executer_type", String),
    _req("conf_id", Integer, ForeignKey("task_conf.id")),
    _req("spec", Text),
    _opt("job_id", String),
    _req("created_at", Float),
    _opt("launched_at", Float),
    _opt("started_at", Float),
    _opt("ended_at", Float),
    _opt("message", Text),
    # launches so far (its attempts), and automatic retries since a person last (re)started it
    _req("attempt", Integer, server_default="0"),
    _req("retry", Integer, server_default="0"))

transition_table = Table(
    "transition", metadata,
    Column("id", Integer, primary_key=True),
    _req("task_id", Integer, ForeignKey("task.id"), index=True),
    _req("state", String),
    _opt("step", Integer),
    _req("at", Float))

# Output variables of completed tasks, as text (typed by the task's spec).
output_var_table = Table(
    "output_var", metadata,
    Column("task_id", Integer, ForeignKey("task.id"), primary_key=True),
    Column("name", String, primary_key=True),
    _req("value", Text))

# One launch of a task (its attempt N) and what it used: written at launch, completed at its end
# (by the orchestrator, from what the launcher, Slurm's sacct or the host reported). Exposed to
# users as the view `attempts`, with Nextflow's trace column names (0002).
attempt_table = Table(
    "attempt", metadata,
    Column("task_id", Integer, ForeignKey("task.id"), primary_key=True),
    Column("attempt", Integer, primary_key=True),
    _req("executer", String),
    _opt("native_id", String),
    _opt("host", String),
    _req("hash", String),
    _req("workdir", Text),
    _req("status", String),
    _opt("exit", Integer),
    _opt("step", Integer),
    _req("submit", Float),
    _opt("start", Float),
    _opt("complete", Float),
    _opt("cpu_user", Float),
    _opt("cpu_sys", Float),
    _opt("peak_rss", Integer),
    _opt("peak_rss_source", String),
    _opt("rchar", Integer),
    _opt("wchar", Integer),
    _opt("read_bytes", Integer),
    _opt("write_bytes", Integer),
    _opt("slurm_state", String),
    _opt("req_cpus", Integer),
    _opt("req_mem", Integer),
    _opt("req_time", Float))

# What an attempt ran with (scheduler/fingerprint.py): its code, input values and files, TaskConf
# and upstream digests, as JSON; its digest is the attempt's `hash`. Written at launch; read only
# to say why a task is out of date.
fingerprint_table = Table(
    "fingerprint", metadata,
    Column("task_id", Integer, ForeignKey("task.id"), primary_key=True),
    Column("attempt", Integer, primary_key=True),
    _req("json", Text))
