"""The SQL of the orchestrator's store, compiled from the model tables (models.py) by SQLAlchemy's
SQLite dialect, and rendered as drypipe/state/sql.py.

The orchestrator runs that generated module's texts with plain sqlite3: `drypipe run`, `prepare`
and `status` then never import SQLAlchemy (a third of a second at every start, more than the
whole run of a small pipeline). The texts still come from the models: no table or column name is
written by hand, a renamed model column is renamed in the statements when sql.py is regenerated,
and tests/test_schema.py fails while sql.py differs from what this module renders:

    python -m drypipe.state.sqlgen > drypipe/state/sql.py      (or: make sql)

Write statements bind plain tuples (executemany: 100k rows in a few hundred ms); a statement
whose `?` would bind other columns, or in another order, than its tuples carry is refused here."""
from __future__ import annotations

import sys
from typing import NamedTuple

from sqlalchemy import Column, Table, and_, bindparam, delete, func, insert, literal_column, not_, select, update
from sqlalchemy.dialects import sqlite

from .models import (attempt_table, fingerprint_table, meta_table, output_var_table, task_conf_table, task_table,
                     transition_table)


class Statement(NamedTuple):
    sql: str
    table: Table
    params: tuple[Column, ...]  # what each `?` binds, in order: the layout of the rows' tuples


_SQLITE = sqlite.dialect(paramstyle="qmark")


def _compile(stmt, table: Table, params: tuple[Column, ...], binds: list[str], **kw) -> Statement:
    compiled = stmt.compile(dialect=_SQLITE, **kw)
    # An INSERT binds in the table's column order; a model column given a Python-side default
    # would add a `?`.
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


def _select(*columns, where=(), order_by=None, join=None, only=None, table=None) -> Statement:
    """where: columns equal to a `?` each; only: an expression rows must satisfy."""
    q = select(*columns) if table is None else select(*columns).select_from(table)
    if join is not None:
        q = q.join(*join)
    for c in where:
        q = q.where(c == bindparam(f"where_{c.key}"))
    if only is not None:
        q = q.where(only)
    if order_by is not None:
        q = q.order_by(order_by)
    compiled = q.compile(dialect=_SQLITE)
    table = columns[0].table if table is None else table
    return Statement(str(compiled), table, tuple(where))


_m, _cf, _t, _o, _tr, _a, _f = (t.c for t in (meta_table, task_conf_table, task_table, output_var_table,
                                               transition_table, attempt_table, fingerprint_table))

# -- writes (store.flush) ------------------------------------------------------------------------
SET_META = insert_statement(meta_table, _m.name, _m.value, replace=True)
INSERT_CONF = insert_statement(task_conf_table, _cf.id, _cf.json)
# rows of add_task()
INSERT_TASK = insert_statement(task_table, _t.id, _t.key, _t.state, _t.step, _t.executer_type, _t.conf_id,
                               _t.spec, _t.created_at)
# rows of flush() from touch()ed nodes
UPDATE_TASK_STATE = update_statement(task_table, (_t.state, _t.step, _t.job_id, _t.launched_at, _t.started_at,
                                                  _t.ended_at, _t.message, _t.attempt, _t.retry), where=_t.id)
# rows of update_definition()
UPDATE_TASK_DEFINITION = update_statement(task_table, (_t.spec, _t.conf_id, _t.executer_type), where=_t.id)
SET_OUTPUT = insert_statement(output_var_table, _o.task_id, _o.name, _o.value, replace=True)
INSERT_TRANSITION = insert_statement(transition_table, _tr.task_id, _tr.state, _tr.step, _tr.at)
DELETE_OUTPUTS = delete_statement(output_var_table, where=_o.task_id)
# rows of save_attempt(): every column, in the table's order (scheduler/attempts.Attempt.row)
SAVE_ATTEMPT = insert_statement(attempt_table, *attempt_table.columns, replace=True)
DELETE_ATTEMPT = _compile(delete(attempt_table).where((_a.task_id == bindparam("where_task_id"))
                                                      & (_a.attempt == bindparam("where_attempt"))),
                          attempt_table, (_a.task_id, _a.attempt), ["where_task_id", "where_attempt"])
SAVE_FINGERPRINT = insert_statement(fingerprint_table, _f.task_id, _f.attempt, _f.json, replace=True)

STATEMENTS = {name: st for name, st in globals().items() if isinstance(st, Statement)}

# -- reads (store.load_*) ------------------------------------------------------------------------
# load_tasks()'s rows, in this order: what every task has...
TASK_ROW = (_t.id, _t.key, _t.state, _t.step, _t.executer_type, _t.conf_id, _t.spec, _t.created_at)
# ...and what only a task launched (or failed at its launch) has: the rows of those tasks alone (most
# tasks of a 100k-task instance prepared are none: each column read costs as much as a row)
TASK_RUN_ROW = (_t.id, _t.job_id, _t.launched_at, _t.started_at, _t.ended_at, _t.message, _t.attempt, _t.retry)
_NEVER_RUN = and_(*(c.is_(None) for c in TASK_RUN_ROW[1:6]), _t.attempt == literal_column("0"),
                  _t.retry == literal_column("0"))
_last = select(_a.task_id, func.max(_a.attempt).label("n")).group_by(_a.task_id).subquery()
QUERIES = {
    "LOAD_META": _select(_m.name, _m.value),
    "LOAD_CONFS": _select(_cf.id, _cf.json),
    "LOAD_TASKS": _select(*TASK_ROW, order_by=_t.id),
    "LOAD_TASK_RUNS": _select(*TASK_RUN_ROW, only=not_(_NEVER_RUN)),
    "LOAD_TASKS_WHOLE": _select(*TASK_ROW, *TASK_RUN_ROW[1:], order_by=_t.id),
    # (how many tasks, how many completed: load_tasks() reads whole rows when most ran)
    "COUNT_TASKS": _select(func.count(), table=task_table),
    "COUNT_IN_STATE": _select(func.count(), where=(_t.state,), table=task_table),
    "LOAD_ATTEMPTS": _select(*attempt_table.columns),
    # the highest attempt of each task
    "LOAD_LAST_ATTEMPTS": _select(*attempt_table.columns, join=(
        _last, (_last.c.task_id == _a.task_id) & (_last.c.n == _a.attempt))),
    "LOAD_OUTPUTS": _select(_o.task_id, _o.name, _o.value),
    "LOAD_FINGERPRINT": _select(_f.json, where=(_f.task_id, _f.attempt)),
}
# column name lists the orchestrator builds its tuples with
NAMES = {
    "TASK_ROW": tuple(c.key for c in TASK_ROW),
    "ATTEMPT_COLUMNS": tuple(c.key for c in attempt_table.columns),
}


def render() -> str:
    """The text of drypipe/state/sql.py."""
    out = ['"""GENERATED from drypipe/state/models.py by drypipe/state/sqlgen.py: do not edit.',
           "Regenerate with `python -m drypipe.state.sqlgen > drypipe/state/sql.py` (`make sql`);",
           'tests/test_schema.py fails while this file differs from what sqlgen renders."""', ""]
    for name, st in (*STATEMENTS.items(), *QUERIES.items()):
        out.append(f"{name} = {st.sql!r}")
    for name, names in NAMES.items():
        out.append(f"{name} = {names!r}")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
