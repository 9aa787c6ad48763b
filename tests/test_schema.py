"""One schema definition, the models of drypipe/state/models.py: the Alembic migrations produce
exactly them (and, at 0001, exactly the DDL of DryPipe 0.1.0's databases); the SQL of the
orchestrator's store is compiled from them (state/sqlgen.py, rendered as state/sql.py, which
state/store.py runs with plain sqlite3); a database round-trips through Store."""
import ast
import inspect
import os
import re
import sqlite3
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, MetaData, Table, select

from drypipe.errors import InstanceError
from drypipe.state import db, sql, sqlgen, store
from drypipe.state.models import metadata, task_table, transition_table
from drypipe.state.store import Store

REPO = Path(__file__).resolve().parent.parent

VIEWS = ("tasks", "transitions")

# sqlite_master of a database made by DryPipe 0.1.0 (HEAD before the models became the schema's
# single definition), less Alembic's own alembic_version table: (type, name, tbl_name, sql).
RELEASE_0001_SCHEMA = [
    ('index', 'ix_task_state', 'task',
     'CREATE INDEX ix_task_state ON task (state)'),
    ('index', 'ix_transition_task_id', 'transition',
     'CREATE INDEX ix_transition_task_id ON transition (task_id)'),
    ('index', 'sqlite_autoindex_instance_meta_1', 'instance_meta', None),
    ('index', 'sqlite_autoindex_output_var_1', 'output_var', None),
    ('index', 'sqlite_autoindex_task_1', 'task', None),
    ('index', 'sqlite_autoindex_task_conf_1', 'task_conf', None),
    ('table', 'instance_meta', 'instance_meta',
     'CREATE TABLE instance_meta (\n'
     '\tname VARCHAR NOT NULL, \n'
     '\tvalue TEXT NOT NULL, \n'
     '\tPRIMARY KEY (name)\n'
     ')'),
    ('table', 'output_var', 'output_var',
     'CREATE TABLE output_var (\n'
     '\ttask_id INTEGER NOT NULL, \n'
     '\tname VARCHAR NOT NULL, \n'
     '\tvalue TEXT NOT NULL, \n'
     '\tPRIMARY KEY (task_id, name), \n'
     '\tFOREIGN KEY(task_id) REFERENCES task (id)\n'
     ')'),
    ('table', 'task', 'task',
     'CREATE TABLE task (\n'
     '\tid INTEGER NOT NULL, \n'
     '\t"key" VARCHAR NOT NULL, \n'
     '\tstate VARCHAR NOT NULL, \n'
     '\tstep INTEGER, \n'
     '\texecuter_type VARCHAR NOT NULL, \n'
     '\tconf_id INTEGER NOT NULL, \n'
     '\tspec TEXT NOT NULL, \n'
     '\tjob_id VARCHAR, \n'
     '\tcreated_at FLOAT NOT NULL, \n'
     '\tlaunched_at FLOAT, \n'
     '\tstarted_at FLOAT, \n'
     '\tended_at FLOAT, \n'
     '\tmessage TEXT, \n'
     '\tPRIMARY KEY (id), \n'
     '\tUNIQUE ("key"), \n'
     '\tFOREIGN KEY(conf_id) REFERENCES task_conf (id)\n'
     ')'),
    ('table', 'task_conf', 'task_conf',
     'CREATE TABLE task_conf (\n'
     '\tid INTEGER NOT NULL, \n'
     '\tjson TEXT NOT NULL, \n'
     '\tPRIMARY KEY (id), \n'
     '\tUNIQUE (json)\n'
     ')'),
    ('table', 'transition', 'transition',
     'CREATE TABLE transition (\n'
     '\tid INTEGER NOT NULL, \n'
     '\ttask_id INTEGER NOT NULL, \n'
     '\tstate VARCHAR NOT NULL, \n'
     '\tstep INTEGER, \n'
     '\tat FLOAT NOT NULL, \n'
     '\tPRIMARY KEY (id), \n'
     '\tFOREIGN KEY(task_id) REFERENCES task (id)\n'
     ')'),
    ('view', 'tasks', 'tasks',
     'CREATE VIEW tasks AS\n'
     '        SELECT t.key AS key, t.state AS state, t.step AS step, t.executer_type AS executer_type,\n'
     '               t.job_id AS job_id,\n'
     "               strftime('%Y-%m-%dT%H:%M:%fZ', t.launched_at, 'unixepoch') AS launched_at,\n"
     "               strftime('%Y-%m-%dT%H:%M:%fZ', t.started_at, 'unixepoch') AS started_at,\n"
     "               strftime('%Y-%m-%dT%H:%M:%fZ', t.ended_at, 'unixepoch') AS ended_at,\n"
     '               round(t.ended_at - t.started_at, 3) AS duration_s\n'
     '        FROM task t'),
    ('view', 'transitions', 'transitions',
     'CREATE VIEW transitions AS\n'
     "        SELECT t.key AS key, tr.state AS state, tr.step AS step, "
     "strftime('%Y-%m-%dT%H:%M:%fZ', tr.at, 'unixepoch') AS at\n"
     '        FROM transition tr JOIN task t ON t.id = tr.task_id\n'
     '        ORDER BY tr.id'),
]


def schema(path) -> list[tuple]:
    con = sqlite3.connect(path)
    try:
        return con.execute("SELECT type, name, tbl_name, sql FROM sqlite_master "
                           "WHERE tbl_name != 'alembic_version' ORDER BY type, name").fetchall()
    finally:
        con.close()


def migrated_db(tmp_path, target="head") -> str:
    """A new DB file upgraded by the migrations themselves (not the cached template)."""
    path = str(tmp_path / "migrated.db")
    engine = db.make_engine(path)
    db.migrate(engine, target)
    engine.dispose()
    return path


def schema_diffs(path, metadata) -> list:
    engine = db.make_engine(path)
    try:
        with engine.connect() as c:
            mc = MigrationContext.configure(c, opts={
                "compare_type": True, "compare_server_default": True,
                # the views are in the migration only (see models.py)
                "include_name": lambda name, type_, parent: not (type_ == "table" and name in VIEWS)})
            return compare_metadata(mc, metadata)
    finally:
        engine.dispose()


# -- (a) the migrations make the models' schema --------------------------------------------------
def test_migrated_schema_is_the_models(tmp_path):
    path = migrated_db(tmp_path)
    assert schema_diffs(path, metadata) == []
    # and the views, not compared above, still read the tables as they are at head
    con = sqlite3.connect(path)
    for view in VIEWS:
        con.execute(f"SELECT * FROM {view}").fetchall()
    con.close()


def _default(d):
    """A server default as its SQL text ('0'), reflected (a TextClause, maybe quoted) or modelled."""
    if d is None:
        return None
    arg = getattr(d, "arg", d)
    return str(getattr(arg, "text", arg)).strip("'\"")


def described(tables) -> dict:
    """Everything of a schema but the views, as plain data: from reflection or from the models."""
    from sqlalchemy import UniqueConstraint
    from sqlalchemy.dialects import sqlite
    out = {}
    for name, t in tables.items():
        out[name] = dict(
            columns=[(c.name, c.type.compile(dialect=sqlite.dialect()), c.nullable, _default(c.server_default))
                     for c in t.c],
            primary_key=[c.name for c in t.primary_key.columns],
            unique=sorted(sorted(c.name for c in u.columns) for u in t.constraints
                          if isinstance(u, UniqueConstraint)),
            indexes=sorted((i.name, [c.name for c in i.columns], bool(i.unique)) for i in t.indexes),
            foreign_keys=sorted(([e.parent.name for e in fk.elements], fk.referred_table.name,
                                 [e.column.name for e in fk.elements]) for fk in t.foreign_key_constraints))
    return out


def test_migrated_constraints_are_the_models(tmp_path):
    """compare_metadata is blind to some differences on SQLite (an unnamed UNIQUE the migration
    adds that the models lack, ...): compare the reflected schema item by item as well."""
    engine = db.make_engine(migrated_db(tmp_path))
    try:
        reflected = MetaData()
        reflected.reflect(engine, only=lambda name, _md: name != "alembic_version" and name not in VIEWS)
    finally:
        engine.dispose()
    assert described(reflected.tables) == described(metadata.tables)


def test_the_comparison_sees_a_model_that_drifted(tmp_path):
    """The check above is not vacuous: a model column renamed without a migration is reported."""
    path = migrated_db(tmp_path)
    drifted = MetaData()
    for t in metadata.sorted_tables:
        t.to_metadata(drifted)
    name = task_table.c.executer_type.name
    drifted.tables[task_table.name].c[name].name = name + "_renamed"  # a rename in models.py
    diffs = schema_diffs(path, drifted)
    kinds = {(d[0], d[3].name) for d in diffs
             if isinstance(d, tuple) and d[0] in ("add_column", "remove_column")}
    assert kinds == {("add_column", name + "_renamed"), ("remove_column", name)}, diffs


def test_revision_0001_writes_the_ddl_of_the_release(tmp_path):
    """Instances made by 0.1.0 and by this code have the very same schema text."""
    assert schema(migrated_db(tmp_path, "0001")) == RELEASE_0001_SCHEMA


# -- (b) store.py's statements come from the models ----------------------------------------------
SQL_WORDS = {"INSERT", "OR", "REPLACE", "INTO", "VALUES", "UPDATE", "SET", "WHERE", "DELETE", "FROM", "AND"}


def named_identifiers(sql: str) -> tuple[set[str], set[str]]:
    """(the table names, the column names) a write statement's text names."""
    identifier = r'"[^"]+"|[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_"][A-Za-z0-9_"]*)?'  # name or table.name
    names = [w.strip('"') for w in re.findall(identifier, sql) if w not in SQL_WORDS]
    tables, columns = {names[0]}, set()  # the statement's table comes before its columns
    for w in names[1:]:
        if "." in w:  # table.column in a WHERE clause
            t, c = (p.strip('"') for p in w.split("."))
            tables.add(t)
            columns.add(c)
        else:
            columns.add(w)
    return tables, columns


def test_store_has_its_statements():
    assert set(sqlgen.STATEMENTS) >= {"SET_META", "INSERT_CONF", "INSERT_TASK", "UPDATE_TASK_STATE",
                                     "UPDATE_TASK_DEFINITION", "SET_OUTPUT", "INSERT_TRANSITION",
                                     "DELETE_OUTPUTS"}


@pytest.mark.parametrize("name", sorted(sqlgen.STATEMENTS))
def test_store_statement_names_only_model_columns(name):
    st = sqlgen.STATEMENTS[name]
    tables, columns = named_identifiers(st.sql)
    assert tables == {st.table.name}, st.sql
    assert columns <= {c.name for c in metadata.tables[st.table.name].c}, st.sql
    assert columns == {c.name for c in st.params}, st.sql
    assert st.sql.count("?") == len(st.params), st.sql
    for c in st.params:
        assert c.table is st.table and st.table.c[c.key] is c


@pytest.mark.parametrize("name", sorted(sqlgen.STATEMENTS))
def test_store_statement_prepares_against_the_migrated_schema(tmp_path, name):
    """SQLite itself resolves every table and column of the statement in a DB the migrations made:
    a model column renamed without its migration fails here (and in the comparison above)."""
    st = sqlgen.STATEMENTS[name]
    con = sqlite3.connect(migrated_db(tmp_path))
    con.execute("EXPLAIN " + st.sql, (None,) * len(st.params)).fetchall()
    con.close()


def test_inserts_bind_every_required_column():
    for st in sqlgen.STATEMENTS.values():
        if st.sql.startswith("INSERT"):
            required = {c.name for c in st.table.c if not c.nullable and c is not st.table.autoincrement_column
                        and c.default is None and c.server_default is None}
            assert required <= {c.name for c in st.params}, st.sql


def test_a_renamed_model_column_renames_the_statement(tmp_path):
    """The statements are built from the table objects: rename a column and the text follows."""
    old = task_table.c.executer_type.name
    new = old + "_renamed"
    rename = {old: new}.get
    renamed = Table(task_table.name, MetaData(), *(Column(rename(c.name, c.name), c.type,
                                                                 primary_key=c.primary_key)
                                                          for c in task_table.c))
    st = sqlgen.insert_statement(renamed, *(renamed.c[rename(c.name, c.name)] for c in sqlgen.INSERT_TASK.params))
    assert st.sql == sqlgen.INSERT_TASK.sql.replace(old, new) != sqlgen.INSERT_TASK.sql
    con = sqlite3.connect(migrated_db(tmp_path))
    with pytest.raises(sqlite3.OperationalError, match=new):
        con.execute("EXPLAIN " + st.sql, (None,) * len(st.params))
    con.close()


def test_a_statement_binding_out_of_the_table_order_is_refused():
    """flush() passes tuples: an INSERT whose `?` would not bind the columns in the given order
    is refused when sqlgen.py is imported, not discovered as swapped values in a database."""
    t = task_table.c
    with pytest.raises(RuntimeError, match="binds"):
        sqlgen.insert_statement(task_table, t.key, t.id, t.state, t.executer_type, t.conf_id, t.spec,
                               t.created_at)


def test_sql_py_is_what_sqlgen_renders_from_the_models():
    """state/sql.py (what the orchestrator runs) is generated: edited by hand, or left behind by a
    model change, it fails here. Regenerate: python -m drypipe.state.sqlgen > drypipe/state/sql.py"""
    with open(sql.__file__) as f:
        assert f.read() == sqlgen.render()
    assert sql.INSERT_TASK == sqlgen.INSERT_TASK.sql and sql.LOAD_TASKS.startswith("SELECT task.id, task.")


def test_a_changed_model_changes_what_sqlgen_renders():
    """The comparison above is not vacuous: the rendered text follows the models' columns."""
    old = task_table.c.executer_type
    try:
        old.name = "executer_type_renamed"
        assert "executer_type_renamed" in sqlgen.insert_statement(task_table, *sqlgen.INSERT_TASK.params).sql
    finally:
        old.name = "executer_type"


@pytest.mark.parametrize("name", sorted(sqlgen.QUERIES))
def test_store_query_prepares_against_the_migrated_schema(tmp_path, name):
    con = sqlite3.connect(migrated_db(tmp_path))
    con.execute("EXPLAIN " + getattr(sql, name), (None,) * len(sqlgen.QUERIES[name].params)).fetchall()
    con.close()


def test_running_a_pipeline_never_imports_sqlalchemy(tmp_path):
    """`drypipe run` (a new instance, then the finished one again) and `status` run on plain
    sqlite3: importing SQLAlchemy alone costs a third of a second at every start."""
    code = ("import sys\nfrom drypipe.cli import main as m\n"
            "for args in (['run', '-q'], ['run', '-q'], ['status']):\n"
            "    try:\n"
            "        m.cli([*args, '--pipeline-instance-dir', sys.argv[1], *(['--generator', "
            "'tests.pipelines.engine:static_chain'] if args[0] == 'run' else [])], standalone_mode=False)\n"
            "    except SystemExit as e:\n"
            "        assert e.code == 0, (args, e.code)\n"
            "print('sqlalchemy' in sys.modules, file=sys.stderr)\n")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "inst")], capture_output=True, text=True,
                          cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "False", proc.stderr


def test_store_py_writes_no_sql_by_hand():
    """No SQL text in store.py outside docstrings: it is all compiled from the models."""
    tree = ast.parse(inspect.getsource(store))
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and node.body \
                and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant):
            docstrings.add(id(node.body[0].value))
    literals = [n.value for n in ast.walk(tree)
                if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings]
    sql = re.compile(r"\b(INSERT|UPDATE|DELETE|SELECT|FROM|INTO)\b")
    assert [s for s in literals if sql.search(s)] == []
    names = set(metadata.tables) | {c.name for t in metadata.tables.values() for c in t.c}
    # "id", "name", ... are also ordinary words: look for the longer, schema-only ones
    assert [s for s in literals if s in {n for n in names if "_" in n}] == []


# -- (c) a database round-trips through Store ----------------------------------------------------
def release_instance(tmp_path):
    """An instance whose DB has the DDL DryPipe 0.1.0 wrote, stamped 0001: opens without change."""
    inst = tmp_path / "release"
    (inst / ".drypipe").mkdir(parents=True)
    path = db.db_path(str(inst))
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
                "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))")
    con.execute("INSERT INTO alembic_version VALUES ('0001')")
    for typ in ("table", "index", "view"):
        for _sql in [r[3] for r in RELEASE_0001_SCHEMA if r[0] == typ and r[3]]:  # autoindexes have none
            con.execute(_sql)
    con.commit()
    con.close()
    return inst, db.open_db(str(inst))


def new_instance(tmp_path):
    inst = tmp_path / "new"
    return inst, db.open_db(str(inst), create=True)


def node(id, key, conf_id, **kw):
    fields = dict(state="waiting", step=None, executer_type="process", created_at=1000.0 + id, job_id=None,
                  launched_at=None, started_at=None, ended_at=None, message=None, attempt=0, retry=0)
    fields.update(kw)
    return types.SimpleNamespace(id=id, key=key, conf_id=conf_id, **fields)


def test_the_launch_columns_load_alike_whether_few_or_most_tasks_ran(tmp_path):
    """load_tasks() reads the columns only a launched task has apart, for the tasks that have
    them, unless most tasks completed: then whole rows. Either way, every value comes back."""
    inst, engine = new_instance(tmp_path)
    s = Store(db.open_path(str(inst)))
    c = s.conf_id('{"a":1}')
    done = node(1, "done", c, state="completed", job_id="7", launched_at=1.5, started_at=2.5, ended_at=3.5,
                message="m", attempt=1)
    retried = node(2, "retried", c, state="ready", retry=1)  # (one column set, the others not)
    failed = node(3, "failed", c, state="failed", message="cannot write its task dir")
    fresh = [node(i, f"fresh-{i}", c) for i in range(4, 8)]
    for n in (done, retried, failed, *fresh):
        s.add_task(n, "{}")
        s.touch(n)
    s.flush()

    def loaded():
        rows, runs = Store(db.open_path(str(inst))).load_tasks()
        if runs is None:
            return {r[1]: r[7:] for r in rows}
        return {r[1]: (r[7], *runs.get(r[0], (None, None, None, None, None, 0, 0))) for r in rows}

    few = loaded()
    assert Store(db.open_path(str(inst))).load_tasks()[1] is not None  # 1 of 7 completed: apart
    assert few["done"] == (1001.0, "7", 1.5, 2.5, 3.5, "m", 1, 0)
    assert few["retried"] == (1002.0, None, None, None, None, None, 0, 1)
    assert few["failed"] == (1003.0, None, None, None, None, "cannot write its task dir", 0, 0)
    assert few["fresh-4"] == (1004.0, None, None, None, None, None, 0, 0)
    for n in fresh:
        n.state = "completed"
        s.touch(n)
    s.flush()
    assert Store(db.open_path(str(inst))).load_tasks()[1] is None  # 5 of 7: whole rows
    assert loaded() == few
    s.close()
    engine.dispose()


@pytest.mark.parametrize("make", [release_instance, new_instance], ids=["release-0.1.0-db", "new-db"])
def test_a_db_round_trips_through_store(tmp_path, make):
    inst, engine = make(tmp_path)
    path = db.db_path(str(inst))
    before = schema(path)
    s = Store(path)
    assert (s.load_meta(), s.load_confs(), s.load_tasks(), s.load_outputs()) == ({}, {}, ([], {}), {})
    s.set_meta("generator", "pipe:dag")
    c1 = s.conf_id('{"a":1}')
    c2 = s.conf_id('{"b":2}')
    assert (s.conf_id('{"a":1}'), c1 != c2) == (c1, True)
    n1 = node(1, "t-1", c1)
    n2 = node(2, "t-'\"2 ü", c1, state="ready")
    s.add_task(n1, '{"spec":1}')
    s.add_task(n2, '{"spec":2}')
    assert s.has_pending
    s.flush()
    assert not s.has_pending

    n1.state, n1.step, n1.job_id, n1.message = "completed", None, "4242", "done"
    n1.launched_at, n1.started_at, n1.ended_at = 1764160000.0, 1764160001.5, 1764160004.0
    n1.attempt, n1.retry = 2, 1
    s.touch(n1)
    s.transition(n1, "launched", None, 1764160000.0)
    s.transition(n1, "step-started", 0, 1764160001.5)
    s.transition(n1, "completed", None, 1764160004.0)
    s.set_outputs(n1, {"x": "42", "y": "a b"})
    n2.conf_id = c2
    s.update_definition(n2, '{"spec":22}')
    s.set_meta("generator", "pipe:dag2")
    s.set_meta("code_dir", "/code")
    s.flush()
    s.set_outputs(n1, {"x": "43"})  # INSERT OR REPLACE: replaced, y kept
    s.flush()
    s.close()
    engine.dispose()

    engine = db.open_db(str(inst))
    s = Store(db.open_path(str(inst)))
    assert s.load_meta() == {"generator": "pipe:dag2", "code_dir": "/code"}
    assert s.load_confs() == {c1: '{"a":1}', c2: '{"b":2}'}
    assert s.conf_id('{"b":2}') == c2 and s.conf_id('{"c":3}') not in (c1, c2)  # ids known once loaded
    rows, runs = s.load_tasks()
    assert [tuple(r) for r in rows] == [
        (1, "t-1", "completed", None, "process", c1, '{"spec":1}', 1001.0),
        (2, "t-'\"2 ü", "ready", None, "process", c2, '{"spec":22}', 1002.0),
    ]
    # what only a launched task has: for the tasks that have some of it (t-2 was never launched)
    assert runs == {1: ("4242", 1764160000.0, 1764160001.5, 1764160004.0, "done", 2, 1)}
    assert s.load_outputs() == {1: {"x": "43", "y": "a b"}}
    tr = transition_table.c
    with engine.connect() as c:
        assert c.execute(select(tr.task_id, tr.state, tr.step, tr.at).order_by(tr.id)).all() == [
            (1, "launched", None, 1764160000.0), (1, "step-started", 0, 1764160001.5),
            (1, "completed", None, 1764160004.0)]
        assert c.exec_driver_sql("SELECT key, state, duration_s FROM tasks ORDER BY key").all() == [
            ("t-'\"2 ü", "ready", None), ("t-1", "completed", 2.5)]
        assert c.exec_driver_sql("SELECT key, state, step, at FROM transitions").all()[1] == (
            "t-1", "step-started", 0, "2025-11-26T12:26:41.500Z")
    s.clear_outputs(n1)
    assert s.load_outputs() == {}
    s.close()
    engine.dispose()
    assert schema(path) == before  # nothing migrated or altered the existing DB's schema
    assert db.current_revision(path) == db.SCHEMA_REVISION


def test_new_tasks_are_written_into_the_open_transaction_and_committed_by_the_flush(tmp_path, monkeypatch):
    """A big generation's rows leave memory every STAGE_EVERY tasks, but nobody sees them before
    the round's commit, and an orchestrator that dies before it leaves none behind."""
    monkeypatch.setattr(store, "STAGE_EVERY", 3)
    inst, engine = new_instance(tmp_path)
    engine.dispose()
    path = db.db_path(str(inst))

    def count():
        con = sqlite3.connect(path)
        try:
            return con.execute("SELECT count(*) FROM task").fetchone()[0]
        finally:
            con.close()

    s = Store(path)
    c = s.conf_id('{"a":1}')
    for i in range(7):
        s.add_task(node(i + 1, f"t-{i}", c), '{"spec":%d}' % i)
    assert len(s._new_tasks) == 1 and s.has_pending  # 6 written, 1 buffered
    assert count() == 0  # not committed
    s.flush()
    assert count() == 7 and not s.has_pending
    for i in range(7, 10):
        s.add_task(node(i + 1, f"t-{i}", c), "{}")
    s.close()  # dies before its flush: the staged rows are rolled back
    assert count() == 7
    dry = Store(path, dry_run=True)
    for i in range(10, 20):
        dry.add_task(node(i + 1, f"t-{i}", c), "{}")
    dry.flush()
    dry.close()
    assert count() == 7


def _count(path):
    con = sqlite3.connect(path)
    try:
        return con.execute("SELECT count(*) FROM task").fetchone()[0]
    finally:
        con.close()


def test_staging_writer_killed_fails_the_flush_and_leaves_nothing(tmp_path, monkeypatch):
    """The writer process of a big generation (state/stager.py) killed -9 mid-generation: the
    round fails with the store's one-line error, and the DB holds none of its rows."""
    monkeypatch.setattr(store, "STAGE_EVERY", 3)
    inst, engine = new_instance(tmp_path)
    engine.dispose()
    path = db.db_path(str(inst))
    s = Store(path)
    c = s.conf_id('{"a":1}')
    for i in range(4):
        s.add_task(node(i + 1, f"t-{i}", c), "{}")
    assert s._stager, "a batch went to the writer process"
    s._stager.proc.kill()
    s._stager.proc.wait()
    with pytest.raises((InstanceError, sqlite3.Error)):
        for i in range(4, 10):
            s.add_task(node(i + 1, f"t-{i}", c), "{}")
        s.flush()
    s.close()
    assert _count(path) == 0


def test_orchestrator_killed_mid_generation_leaves_nothing_and_no_writer(tmp_path):
    """kill -9 of the process staging a big generation: its writer process rolls back and
    exits (end of its input), the DB holds none of the rows."""
    inst, engine = new_instance(tmp_path)
    engine.dispose()
    path = db.db_path(str(inst))
    code = (
        "import os, signal, sys, types\n"
        "from drypipe.state import store\n"
        "store.STAGE_EVERY = 3\n"
        f"s = store.Store({path!r})\n"
        "c = s.conf_id('{}')\n"
        "for i in range(7):\n"
        "    s.add_task(types.SimpleNamespace(id=i + 1, key=f't-{i}', state='waiting', step=None,\n"
        "               executer_type='process', conf_id=c, created_at=1.0), '{}')\n"
        "print(s._stager.proc.pid, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == -9, proc.stderr
    writer = int(proc.stdout.strip())
    deadline = time.monotonic() + 30
    while os.path.exists(f"/proc/{writer}") and _state(writer) != "Z" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{writer}") or _state(writer) == "Z", "the writer process outlived its orchestrator"
    assert _count(path) == 0


def _state(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"
