"""Reading an instance's database with plain sqlite3: what `drypipe status`, `list-states` and
the API's listings need, without importing SQLAlchemy (a third of a second of every command).

The connection never writes, not even the WAL pragma, so a read-only instance (or a colleague's)
can be inspected. When the WAL index cannot be created next to the DB (a read-only dir) and no
orchestrator runs, the file is read as immutable."""
from __future__ import annotations

import os
import sqlite3
from typing import Callable

from ..errors import InstanceError

DB_NAME = "drypipe.db"
# The Alembic head revision this code reads and writes; tests check it against migrations/.
SCHEMA_REVISION = "0003"


def db_path(instance_dir: str) -> str:
    return os.path.join(instance_dir, ".drypipe", DB_NAME)


def connector(path: str) -> Callable[[], sqlite3.Connection]:
    """A function opening read-only connections to the DB file at path."""
    from .lock import holder_pid
    instance_dir = os.path.dirname(os.path.dirname(path))
    immutable = not os.access(os.path.dirname(path), os.W_OK) or _dir_immutable(os.path.dirname(path))
    if immutable and holder_pid(instance_dir) is not None:
        immutable = False
    uri = f"file:{path}?mode=ro" + ("&immutable=1" if immutable else "")

    def connect():
        con = sqlite3.connect(uri, uri=True, check_same_thread=False)
        con.execute("PRAGMA busy_timeout=10000")
        return con
    return connect


def _dir_immutable(d: str) -> bool:
    """Root ignores permission bits: try to create a file to know whether d is writable."""
    probe = os.path.join(d, f".drypipe-write-probe-{os.getpid()}")
    try:
        os.close(os.open(probe, os.O_CREAT | os.O_WRONLY, 0o600))
        os.unlink(probe)
        return False
    except OSError:
        return True


def current_revision(path: str) -> str | None:
    """The revision stamped in an existing DB file (plain sqlite3: no Alembic import needed)."""
    for uri in (f"file:{path}?mode=ro", f"file:{path}?mode=ro&immutable=1"):
        try:
            con = sqlite3.connect(uri, uri=True)
        except sqlite3.OperationalError:
            continue
        try:
            row = con.execute("SELECT version_num FROM alembic_version").fetchone()
            return row[0] if row else None
        except sqlite3.OperationalError as e:
            if "no such table" in str(e):
                return None
            if "unable to open" in str(e):
                continue  # a WAL db in a read-only dir: try reading it as immutable
            raise InstanceError(f"{path}: cannot read the database: {e}") from e
        except sqlite3.DatabaseError as e:
            raise InstanceError(f"{path}: not a DryPipe database ({e})") from e
        finally:
            con.close()
    raise InstanceError(f"{path}: cannot open the database for reading")
