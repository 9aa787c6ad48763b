"""SQLAlchemy models of the per-instance database `.drypipe/drypipe.db`: THE definition of its
tables, columns, types, indexes and constraints.

Everything else is derived from them:
- the Alembic migrations in migrations/versions/ are generated from them (`alembic revision
  --autogenerate`, recipe in migrations/env.py), so a change here goes with a new revision and a
  new db.SCHEMA_REVISION; tests/test_schema.py fails while the migrated schema and these models
  differ;
- the orchestrator's batched writer (store.py) compiles its INSERT/UPDATE/DELETE texts from these
  tables once, at import: a renamed column renames it there too.

Times are UNIX epoch seconds (REAL, UTC); the `tasks` and `transitions` views present them
as ISO-8601 text for users who audit with plain SQL. The views are not modelled (nothing in
DryPipe reads them): their SQL is in the migration that creates them, 0001_initial.py, only.
"""
from __future__ import annotations

from sqlalchemy import Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class InstanceMeta(Base):
    """Facts about the instance: the generator it was run with, its code dir, ..."""
    __tablename__ = "instance_meta"
    name: Mapped[str] = mapped_column(String, primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class TaskConfRow(Base):
    """Distinct TaskConfs, as JSON; tasks share them."""
    __tablename__ = "task_conf"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    json: Mapped[str] = mapped_column(Text, unique=True)


class TaskRow(Base):
    __tablename__ = "task"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String, unique=True)
    state: Mapped[str] = mapped_column(String, index=True)
    step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    executer_type: Mapped[str] = mapped_column(String)
    conf_id: Mapped[int] = mapped_column(ForeignKey("task_conf.id"))
    spec: Mapped[str] = mapped_column(Text)
    job_id: Mapped[str | None] = mapped_column(String, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    launched_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    ended_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    # launches so far (its attempts), and automatic retries since a person last (re)started it
    attempt: Mapped[int] = mapped_column(Integer, server_default="0")
    retry: Mapped[int] = mapped_column(Integer, server_default="0")


class Transition(Base):
    __tablename__ = "transition"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("task.id"), index=True)
    state: Mapped[str] = mapped_column(String)
    step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    at: Mapped[float] = mapped_column(Float)


class OutputVar(Base):
    """Output variables of completed tasks, as text (typed by the task's spec)."""
    __tablename__ = "output_var"
    task_id: Mapped[int] = mapped_column(ForeignKey("task.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String, primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class AttemptRow(Base):
    """One launch of a task (its attempt N) and what it used: written at launch, completed at
    its end (by the orchestrator, from what the launcher, Slurm's sacct or the host reported).
    Exposed to users as the view `attempts`, with Nextflow's trace column names (0002)."""
    __tablename__ = "attempt"
    task_id: Mapped[int] = mapped_column(ForeignKey("task.id"), primary_key=True)
    attempt: Mapped[int] = mapped_column(Integer, primary_key=True)
    executer: Mapped[str] = mapped_column(String)
    native_id: Mapped[str | None] = mapped_column(String, nullable=True)
    host: Mapped[str | None] = mapped_column(String, nullable=True)
    hash: Mapped[str] = mapped_column(String)
    workdir: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String)
    exit: Mapped[int | None] = mapped_column(Integer, nullable=True)
    step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    submit: Mapped[float] = mapped_column(Float)
    start: Mapped[float | None] = mapped_column(Float, nullable=True)
    complete: Mapped[float | None] = mapped_column(Float, nullable=True)
    cpu_user: Mapped[float | None] = mapped_column(Float, nullable=True)
    cpu_sys: Mapped[float | None] = mapped_column(Float, nullable=True)
    peak_rss: Mapped[int | None] = mapped_column(Integer, nullable=True)
    peak_rss_source: Mapped[str | None] = mapped_column(String, nullable=True)
    rchar: Mapped[int | None] = mapped_column(Integer, nullable=True)
    wchar: Mapped[int | None] = mapped_column(Integer, nullable=True)
    read_bytes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    write_bytes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    slurm_state: Mapped[str | None] = mapped_column(String, nullable=True)
    req_cpus: Mapped[int | None] = mapped_column(Integer, nullable=True)
    req_mem: Mapped[int | None] = mapped_column(Integer, nullable=True)
    req_time: Mapped[float | None] = mapped_column(Float, nullable=True)


class FingerprintRow(Base):
    """What an attempt ran with (scheduler/fingerprint.py): its code, input values and files,
    TaskConf and upstream digests, as JSON; its digest is the attempt's `hash`. Written at
    launch; read only to say why a task is out of date."""
    __tablename__ = "fingerprint"
    task_id: Mapped[int] = mapped_column(ForeignKey("task.id"), primary_key=True)
    attempt: Mapped[int] = mapped_column(Integer, primary_key=True)
    json: Mapped[str] = mapped_column(Text)


task_table = TaskRow.__table__
attempt_table = AttemptRow.__table__
transition_table = Transition.__table__
output_var_table = OutputVar.__table__
task_conf_table = TaskConfRow.__table__
fingerprint_table = FingerprintRow.__table__
meta_table = InstanceMeta.__table__
