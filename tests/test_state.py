"""State names, state files, the Alembic migrations and the SQL views users audit with."""
import os
import sqlite3

import pytest

from drypipe.errors import InstanceError
from drypipe.state import db, statefile
from drypipe.state import states as S


@pytest.mark.parametrize("name,parsed", [
    ("waiting", ("waiting", None)), ("ready", ("ready", None)), ("launched", ("launched", None)),
    ("step-started.0", ("step-started", 0)), ("completed", ("completed", None)),
    ("failed.2", ("failed", 2)), ("killed.1", ("killed", 1)), ("timed-out.10", ("timed-out", 10)),
])
def test_state_names_round_trip(name, parsed):
    assert S.parse(name) == parsed
    assert S.format(*parsed) == name


@pytest.mark.parametrize("bad", ["failed", "step-started", "done", "completed.1", "failed.x", ""])
def test_bad_state_names_are_rejected(bad):
    with pytest.raises(ValueError):
        S.parse(bad)


def test_state_file_is_renamed_and_stays_single(tmp_path):
    assert statefile.read(str(tmp_path)) is None
    statefile.write(str(tmp_path), "launched")
    inode = os.stat(tmp_path / "state.launched").st_ino
    statefile.write(str(tmp_path), "step-started.0", "launched")
    assert os.stat(tmp_path / "state.step-started.0").st_ino == inode  # a rename, not a new file
    statefile.write(str(tmp_path), "completed")  # current unknown: found by scanning
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.completed"]


def test_stray_state_files_collapse_into_one(tmp_path):
    for n in ("state.launched", "state.failed.0"):
        (tmp_path / n).touch()
    assert statefile.read(str(tmp_path)) == "failed.0"  # the later state wins
    statefile.write(str(tmp_path), "ready")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.ready"]


def test_schema_revision_is_the_alembic_head():
    from alembic.script import ScriptDirectory
    assert ScriptDirectory(db.migrations_dir()).get_current_head() == db.SCHEMA_REVISION


def test_migrations_upgrade_an_empty_db_and_views_answer_plain_sql(tmp_path):
    engine = db.open_db(str(tmp_path), create=True)
    engine.dispose()
    path = db.db_path(str(tmp_path))
    con = sqlite3.connect(path)
    con.execute("INSERT INTO task_conf (id, json) VALUES (1, '{}')")
    con.execute("INSERT INTO task (id, key, state, step, executer_type, conf_id, spec, created_at, "
                "launched_at, started_at, ended_at) VALUES (1, 't1', 'failed', 2, 'process', 1, '{}', "
                "0, 1764160000.0, 1764160001.5, 1764160004.0)")
    con.execute("INSERT INTO transition (task_id, state, step, at) VALUES (1, 'step-started', 0, 1764160001.5)")
    con.commit()
    row = con.execute("SELECT key, state, step, executer_type, job_id, launched_at, started_at, ended_at, "
                      "duration_s FROM tasks").fetchone()
    assert row == ("t1", "failed", 2, "process", None, "2025-11-26T12:26:40.000Z",
                   "2025-11-26T12:26:41.500Z", "2025-11-26T12:26:44.000Z", 2.5)
    assert con.execute("SELECT key, state, step, at FROM transitions").fetchall() == [
        ("t1", "step-started", 0, "2025-11-26T12:26:41.500Z")]
    assert con.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert oct(os.stat(path).st_mode & 0o777) == "0o644"


def test_downgrade_then_upgrade_again(tmp_path):
    engine = db.open_db(str(tmp_path), create=True)
    db.migrate_to(engine, "base")
    con = sqlite3.connect(db.db_path(str(tmp_path)))
    assert con.execute("SELECT name FROM sqlite_master WHERE name='task'").fetchall() == []
    con.close()
    db.migrate(engine)
    assert db.current_revision(db.db_path(str(tmp_path))) == db.SCHEMA_REVISION


def test_a_db_from_a_newer_drypipe_is_refused(tmp_path):
    engine = db.open_db(str(tmp_path), create=True)
    engine.dispose()
    con = sqlite3.connect(db.db_path(str(tmp_path)))
    con.execute("UPDATE alembic_version SET version_num='9999'")
    con.commit()
    with pytest.raises(InstanceError, match="written by a newer DryPipe"):
        db.open_db(str(tmp_path))


def test_opening_a_missing_instance_says_so(tmp_path):
    with pytest.raises(InstanceError, match="not a pipeline instance"):
        db.open_db(str(tmp_path / "nope"))
