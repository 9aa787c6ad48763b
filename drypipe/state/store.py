"""Persistence of the orchestrator's task graph: loads it, inserts new tasks, and flushes the
changes of each scheduling round in one transaction (the orchestrator is the only writer)."""
from __future__ import annotations

import json
import sqlite3
import time
from typing import NamedTuple

from sqlalchemy import Column, Table, bindparam, delete, insert, inspect, select, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Engine

from ..errors import InstanceError
from .models import AttemptRow, FingerprintRow, InstanceMeta, OutputVar, TaskConfRow, TaskRow, Transition


# -- the write statements, compiled from the models once -----------------------------------------
# flush() hands them to sqlite3's executemany with plain tuples (100k rows in a few hundred ms,
# which the ORM or SQLAlchemy Core executemany would not do). Their text comes from the model
# tables, compiled by SQLAlchemy's SQLite dialect with `?` parameters: no table or column name is
# written here, so a renamed model column is renamed in these statements too. Columns are taken
# by the models' attribute names: a column renamed in the DB only (mapped_column("new_name"))
# changes the SQL text and nothing else; a renamed attribute fails this module's import.
class Statement(NamedTuple):
    sql: str
    table: Table
    params: tuple[Column, ...]  # what each `?` binds, in order: the layout of the rows' tuples


_SQLITE = sqlite.dialect(paramstyle="qmark")


def _compile(stmt, table: Table, params: tuple[Column, ...], binds: list[str], **kw) -> Statement:
    compiled = stmt.compile(dialect=_SQLITE, **kw)
    # The rows are tuples: refuse to build a statement whose `?` would bind other columns, or in
    # another order, than the tuples carry (an INSERT binds in the table's column order; a model
    # column given a Python-side default would add a `?`).
    if list(compiled.positiontup or ()) != binds:
        raise RuntimeError(f"store: {compiled} binds {compiled.positiontup}, expected {binds}: "
                           "keep the statement's columns in the model table's order")
    return Statement(str(compiled), table, params)


def insert_statement(table: Table, *columns: Column, replace: bool = False) -> Statement:
    """INSERT [OR REPLACE] INTO table (columns) VALUES (?, ...); columns in the table's order."""
    stmt = insert(table).prefix_with("OR REPLACE") if replace else insert(table)
    return _compile(stmt, table, columns, [c.key for c in columns], column_keys=[c.key for c in columns])


def update_statement(table: Table, set_columns: tuple[Column, ...], where: Column) -> Statement:
    """UPDATE table SET c1=?, c2=?, ... WHERE where = ?, binding set_columns then where."""
    stmt = (update(table).ordered_values(*((c, bindparam(f"set_{c.key}")) for c in set_columns))
            .where(where == bindparam(f"where_{where.key}")))
    binds = [f"set_{c.key}" for c in set_columns] + [f"where_{where.key}"]
    return _compile(stmt, table, (*set_columns, where), binds)


def delete_statement(table: Table, where: Column) -> Statement:
    """DELETE FROM table WHERE where = ?"""
    stmt = delete(table).where(where == bindparam(f"where_{where.key}"))
    return _compile(stmt, table, (where,), [f"where_{where.key}"])


# the models' tables, and their columns by attribute name
_MODELS = (InstanceMeta, TaskConfRow, TaskRow, OutputVar, Transition, AttemptRow, FingerprintRow)
_meta, _conf, _task, _out, _trans, _att, _fp = (m.__table__ for m in _MODELS)
_m, _cf, _t, _o, _tr, _a, _f = (inspect(m).columns for m in _MODELS)

SET_META = insert_statement(_meta, _m.name, _m.value, replace=True)
INSERT_CONF = insert_statement(_conf, _cf.id, _cf.json)
# rows of add_task()
INSERT_TASK = insert_statement(_task, _t.id, _t.key, _t.state, _t.step, _t.executer_type, _t.conf_id, _t.spec,
                               _t.created_at)
# rows of flush() from touch()ed nodes
UPDATE_TASK_STATE = update_statement(_task, (_t.state, _t.step, _t.job_id, _t.launched_at, _t.started_at,
                                             _t.ended_at, _t.message, _t.attempt, _t.retry), where=_t.id)
# rows of update_definition()
UPDATE_TASK_DEFINITION = update_statement(_task, (_t.spec, _t.conf_id, _t.executer_type), where=_t.id)
SET_OUTPUT = insert_statement(_out, _o.task_id, _o.name, _o.value, replace=True)
INSERT_TRANSITION = insert_statement(_trans, _tr.task_id, _tr.state, _tr.step, _tr.at)
DELETE_OUTPUTS = delete_statement(_out, where=_o.task_id)
# rows of save_attempt(): every column, in the table's order (scheduler/attempts.Attempt.row)
SAVE_ATTEMPT = insert_statement(_att, *_att.columns, replace=True)
DELETE_ATTEMPT = _compile(delete(_att).where((_a.task_id == bindparam("where_task_id"))
                                             & (_a.attempt == bindparam("where_attempt"))),
                          _att, (_a.task_id, _a.attempt), ["where_task_id", "where_attempt"])
SAVE_FINGERPRINT = insert_statement(_fp, _f.task_id, _f.attempt, _f.json, replace=True)
# the reads of load_tasks(), in the order of its rows
TASK_ROW = (_t.id, _t.key, _t.state, _t.step, _t.executer_type, _t.conf_id, _t.spec, _t.job_id, _t.created_at,
            _t.launched_at, _t.started_at, _t.ended_at, _t.message, _t.attempt, _t.retry)

LOAD_TASKS = str(select(*TASK_ROW).order_by(_t.id).compile(dialect=_SQLITE))

STATEMENTS = {name: st for name, st in globals().items() if isinstance(st, Statement)}


class Store:
    def __init__(self, engine: Engine | None, dry_run: bool = False):
        """engine None: an instance with no database yet (a dry run of a new instance).
        dry_run: flush() discards what was buffered; nothing is ever written."""
        self.dry_run = dry_run
        self.engine = engine
        self.on_commit = None  # called after each commit (the orchestrator mirrors state files then)
        self._conf_ids: dict[str, int] = {}
        self._pending_conf: list[tuple[int, str]] = []
        self._new_tasks: list[tuple] = []
        self._dirty: dict[int, object] = {}
        self._transitions: list[tuple] = []
        self._outputs: list[tuple] = []
        self._meta: dict[str, str] = {}
        self._next_conf_id = 1
        self._raw = None
        self._definitions: list[tuple] = []
        self._attempts: dict[tuple[int, int], object] = {}  # (task id, attempt) -> Attempt to save
        self._attempts_gone: list[tuple[int, int]] = []
        self._fingerprints: list[tuple[int, int, str]] = []

    # -- reading --------------------------------------------------------------------------
    def load_meta(self) -> dict[str, str]:
        if self.engine is None:
            return {}
        with self.engine.connect() as c:
            return {name: value for name, value in c.execute(select(_m.name, _m.value))}

    def load_confs(self) -> dict[int, str]:
        if self.engine is None:
            return {}
        with self.engine.connect() as c:
            rows = c.execute(select(_cf.id, _cf.json)).all()
        for cid, js in rows:
            self._conf_ids[js] = cid
            self._next_conf_id = max(self._next_conf_id, cid + 1)
        return {cid: js for cid, js in rows}

    def load_tasks(self):
        """Rows (id, key, state, step, executer_type, conf_id, spec, job_id, created_at,
        launched_at, started_at, ended_at, message, attempt, retry), in creation order."""
        if self.engine is None:
            return []
        with self.engine.connect() as c:  # sqlite3's own tuples: no Row object per task
            return c.connection.driver_connection.execute(LOAD_TASKS).fetchall()

    def load_attempts(self, running_only: bool = False):
        """Rows of the attempt table (every column, in the table's order); with running_only,
        the highest attempt of each task and the rows still running."""
        if self.engine is None:
            return []
        q = select(*_att.columns)
        if running_only:
            from sqlalchemy import func
            last = select(_a.task_id, func.max(_a.attempt).label("n")).group_by(_a.task_id).subquery()
            q = q.join(last, (last.c.task_id == _a.task_id) & (last.c.n == _a.attempt))
        with self.engine.connect() as c:
            return c.execute(q).all()

    def load_outputs(self) -> dict[int, dict[str, str]]:
        out: dict[int, dict[str, str]] = {}
        if self.engine is None:
            return {}
        with self.engine.connect() as c:
            for tid, name, value in c.execute(select(_o.task_id, _o.name, _o.value)):
                out.setdefault(tid, {})[name] = value
        return out

    # -- buffered writes -----------------------------------------------------------------
    def conf_id(self, conf_json: str) -> int:
        cid = self._conf_ids.get(conf_json)
        if cid is None:
            cid = self._next_conf_id
            self._next_conf_id += 1
            self._conf_ids[conf_json] = cid
            self._pending_conf.append((cid, conf_json))
        return cid

    def set_meta(self, name: str, value: str) -> None:
        self._meta[name] = value

    def add_task(self, node, spec_json: str) -> None:
        self._new_tasks.append((node.id, node.key, node.state, node.step, node.executer_type,
                                node.conf_id, spec_json, node.created_at))

    def touch(self, node) -> None:
        """Persist node's state fields at the next flush."""
        self._dirty[node.id] = node

    def transition(self, node, state: str, step, at: float) -> None:
        self._transitions.append((node.id, state, step, at))

    def save_attempt(self, attempt) -> None:
        key = (attempt.task_id, attempt.attempt)
        self._attempts[key] = attempt
        if key in self._attempts_gone:
            self._attempts_gone.remove(key)

    def delete_attempt(self, attempt) -> None:
        key = (attempt.task_id, attempt.attempt)
        self._attempts.pop(key, None)
        self._attempts_gone.append(key)

    def save_fingerprint(self, task_id: int, attempt: int, text: str) -> None:
        self._fingerprints.append((task_id, attempt, text))

    def load_fingerprint(self, task_id: int, attempt: int) -> str | None:
        if self.engine is None:
            return None
        with self.engine.connect() as c:
            return c.execute(select(_f.json).where((_f.task_id == task_id) & (_f.attempt == attempt))).scalar()

    def set_outputs(self, node, values: dict[str, str]) -> None:
        self._outputs.extend((node.id, k, v) for k, v in values.items())

    @property
    def has_pending(self) -> bool:
        return bool(self._new_tasks or self._dirty or self._transitions or self._outputs
                    or self._pending_conf or self._meta or self._definitions or self._attempts
                    or self._attempts_gone or self._fingerprints)

    def flush(self) -> None:
        if self.dry_run:
            self._discard()
            return
        if not self.has_pending:
            if self.on_commit is not None:
                self.on_commit()
            return
        if self._raw is None:
            # the orchestrator's single writer connection, held for the run (no pool round trip)
            self._raw = self.engine.raw_connection()
        cur = self._raw.cursor()
        x = cur.executemany
        try:
            if self._meta:
                x(SET_META.sql, list(self._meta.items()))
            if self._pending_conf:
                x(INSERT_CONF.sql, self._pending_conf)
            if self._new_tasks:
                x(INSERT_TASK.sql, self._new_tasks)
            if self._dirty:
                x(UPDATE_TASK_STATE.sql,
                  [(n.state, n.step, n.job_id, n.launched_at, n.started_at, n.ended_at, n.message, n.attempt,
                    n.retry, n.id)
                   for n in self._dirty.values()])
            if self._definitions:
                x(UPDATE_TASK_DEFINITION.sql, self._definitions)
            if self._outputs:
                x(SET_OUTPUT.sql, self._outputs)
            if self._transitions:
                x(INSERT_TRANSITION.sql, self._transitions)
            if self._attempts_gone:
                x(DELETE_ATTEMPT.sql, self._attempts_gone)
            if self._attempts:
                x(SAVE_ATTEMPT.sql, [a.row() for a in self._attempts.values()])
            if self._fingerprints:
                x(SAVE_FINGERPRINT.sql, self._fingerprints)
            self._raw.commit()
        except sqlite3.OperationalError as e:
            self._raw.rollback()
            if "readonly" in str(e) or "read-only" in str(e):
                raise InstanceError(f"{self.engine.url.database}: the instance database is not writable") from e
            raise
        except BaseException:
            self._raw.rollback()
            raise
        finally:
            cur.close()
        self._discard()
        if self.on_commit is not None:
            self.on_commit()

    def _discard(self) -> None:
        self._meta.clear()
        self._pending_conf.clear()
        self._new_tasks.clear()
        self._dirty.clear()
        self._outputs.clear()
        self._transitions.clear()
        self._definitions.clear()
        self._attempts.clear()
        self._attempts_gone.clear()
        self._fingerprints.clear()

    def update_definition(self, node, spec_json: str) -> None:
        self._definitions.append((spec_json, node.conf_id, node.executer_type, node.id))

    def close(self) -> None:
        if self._raw is not None:
            self._raw.close()
            self._raw = None

    def clear_outputs(self, node) -> None:
        with self.engine.begin() as c:
            c.exec_driver_sql(DELETE_OUTPUTS.sql, (node.id,))


def now() -> float:
    return time.time()


dumps = json.JSONEncoder(separators=(",", ":")).encode
