"""The store during a generation: new tasks go to the writer process while the generator runs
(state/store.py begin_generation), and a failed generation leaves no trace of them."""
import sqlite3

from drypipe.state import db, store
from drypipe.state.store import Store
from test_schema import new_instance, node


def _new_store(tmp_path, monkeypatch):
    """A new instance's DB path and a store on it that stages every 3 new tasks."""
    monkeypatch.setattr(store, "STAGE_EVERY", 3)
    inst, engine = new_instance(tmp_path)
    engine.dispose()
    path = db.db_path(str(inst))
    return path, Store(path)


def _rows(path, query):
    con = sqlite3.connect(path)
    try:
        return con.execute(query).fetchall()
    finally:
        con.close()


def test_a_dropped_generation_takes_its_staged_rows_and_confs_and_the_next_one_records_them(tmp_path, monkeypatch):
    path, s = _new_store(tmp_path, monkeypatch)
    old = s.conf_id('{"old":1}')
    s.add_task(node(1, "kept", old), "{}")
    s.flush()  # an earlier generation, committed

    s.begin_generation()
    c = s.conf_id('{"new":1}')
    for i in range(7):
        s.add_task(node(i + 2, f"t-{i}", c), "{}")
    assert s._staged, "rows went to the writer while the generation ran"
    s.drop_generation()  # the generator failed
    s.flush()
    assert _rows(path, "SELECT key FROM task") == [("kept",)]
    assert _rows(path, "SELECT json FROM task_conf") == [('{"old":1}',)]

    s.begin_generation()  # the fixed generator: its conf is new again, and recorded with its tasks
    c2 = s.conf_id('{"new":1}')
    assert s.conf_id('{"old":1}') == old
    for i in range(7):
        s.add_task(node(i + 2, f"t-{i}", c2), "{}")
    s.end_generation()
    s.flush()
    s.close()
    assert len(_rows(path, "SELECT key FROM task")) == 8
    assert _rows(path, "PRAGMA foreign_key_check") == []
    assert ('{"new":1}',) in _rows(path, "SELECT json FROM task_conf")


def test_rows_waiting_for_the_flush_survive_a_later_generation_dropped(tmp_path, monkeypatch):
    """A generation that begins with another's rows not yet committed stages nothing until it
    ends: dropping it keeps the rows it found."""
    path, s = _new_store(tmp_path, monkeypatch)
    c = s.conf_id('{"a":1}')
    s.begin_generation()
    for i in range(4):
        s.add_task(node(i + 1, f"first-{i}", c), "{}")
    s.end_generation()  # not flushed yet
    s.begin_generation()
    for i in range(5):
        s.add_task(node(i + 5, f"second-{i}", c), "{}")
    s.drop_generation()
    s.flush()
    s.close()
    assert sorted(k for k, in _rows(path, "SELECT key FROM task")) == [f"first-{i}" for i in range(4)]
