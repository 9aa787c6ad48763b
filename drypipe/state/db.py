"""Opening an instance database: SQLite in WAL mode, migrated by Alembic to the code's revision."""
from __future__ import annotations

import os
import threading

from typing import TYPE_CHECKING

from ..errors import InstanceError
from . import reader
from .reader import DB_NAME, SCHEMA_REVISION, current_revision, db_path  # noqa: F401 (re-exported)

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine



def migrations_dir() -> str:
    """Where the Alembic scripts are: the installed `drypipe_migrations`, or the source tree."""
    try:
        import drypipe_migrations
        return os.path.dirname(os.path.abspath(drypipe_migrations.__file__))
    except ImportError:
        here = os.path.dirname(os.path.abspath(__file__))
        return os.path.join(os.path.dirname(os.path.dirname(here)), "migrations")


# What every DryPipe connection that may write sets: the store's (plain sqlite3), its writer
# process's (state/stager.py, given them on its command line) and the engines' (SQLAlchemy).
PRAGMAS = ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=10000")


def set_pragmas(con) -> None:
    cur = con.cursor()
    for pragma in PRAGMAS:
        cur.execute(f"PRAGMA {pragma}")
    cur.close()


def _on_connect(dbapi_conn, _record):
    set_pragmas(dbapi_conn)


def make_engine(path: str) -> Engine:
    from sqlalchemy import create_engine, event
    engine = create_engine(f"sqlite:///{path}")
    event.listen(engine, "connect", _on_connect)
    return engine


def make_reader_engine(path: str) -> Engine:
    """A read-only engine (status, list-states, the API): state/reader.py's connections."""
    from sqlalchemy import create_engine
    return create_engine("sqlite://", creator=reader.connector(path))


def known_revisions() -> list[str]:
    from alembic.script import ScriptDirectory
    return [s.revision for s in ScriptDirectory(migrations_dir()).walk_revisions()]


# Alembic runs a migration through module-level proxies (alembic.context, alembic.op): one
# migration at a time per process (drypipe service opens instances from several threads)
_MIGRATING = threading.RLock()


def migrate(engine: Engine, target: str = "head") -> None:
    """Apply the Alembic migrations up to target (never downgrades)."""
    from alembic import command
    from alembic.config import Config
    cfg = Config()
    cfg.set_main_option("script_location", migrations_dir())
    with _MIGRATING, engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, target)


def open_path(instance_dir: str, create: bool = False, upgrade: bool = True) -> str:
    """The path of the instance's DB, its schema at SCHEMA_REVISION (what the orchestrator opens
    with plain sqlite3: SQLAlchemy and Alembic are imported only to migrate an older DB).

    A missing DB is created when `create`; an older one is upgraded when `upgrade`;
    one written by a newer DryPipe is refused."""
    path = db_path(instance_dir)
    exists = os.path.exists(path)
    if not exists and not create:
        raise InstanceError(f"{instance_dir}: not a pipeline instance (no .drypipe/{DB_NAME}); "
                            "run `drypipe prepare` or `drypipe run` first")
    if not exists:
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
        except OSError as e:
            raise InstanceError(f"{instance_dir}: cannot create the instance directory: "
                                f"{e.strerror}") from e
        if not os.access(os.path.dirname(path), os.W_OK):
            raise InstanceError(f"{instance_dir}: instance directory is not writable")
    if not exists and _copy_template(path):
        return path
    rev = current_revision(path) if exists else None
    if rev == SCHEMA_REVISION:
        return path
    if rev is not None and rev not in known_revisions():
        raise InstanceError(f"{path}: database revision {rev!r} was written by a newer DryPipe "
                            f"(this one knows up to {SCHEMA_REVISION!r}); upgrade drypipe")
    if not upgrade:
        raise InstanceError(f"{path}: database revision {rev!r} is older than {SCHEMA_REVISION!r}; "
                            "run `drypipe upgrade-drypipe`")
    engine = make_engine(path)
    try:
        migrate(engine)
    except PermissionError as e:
        raise InstanceError(f"{instance_dir}: instance directory is not writable") from e
    finally:
        engine.dispose()
    os.chmod(path, 0o644)
    return path


def open_db(instance_dir: str, create: bool = False, upgrade: bool = True, readonly: bool = False) -> Engine:
    """The instance's engine (the API, reports, tests), its schema at SCHEMA_REVISION: see
    open_path. readonly: state/reader.py's read-only connections."""
    path = open_path(instance_dir, create=create, upgrade=upgrade)
    return make_reader_engine(path) if readonly else make_engine(path)


def migrate_to(engine: Engine, target: str) -> None:
    """Downgrade to target (for tests of the migrations; DryPipe itself never downgrades)."""
    from alembic import command
    from alembic.config import Config
    cfg = Config()
    cfg.set_main_option("script_location", migrations_dir())
    with _MIGRATING, engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, target)


def _template_path() -> str:
    """A DB built by the migrations, cached per content of the migration scripts."""
    from ..digest import sha1
    h = sha1()
    versions = os.path.join(migrations_dir(), "versions")
    for name in sorted(os.listdir(versions)):
        if name.endswith(".py"):
            with open(os.path.join(versions, name), "rb") as f:
                h.update(name.encode() + b"\0" + f.read())
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "drypipe", f"schema-{SCHEMA_REVISION}-{h.hexdigest()[:16]}.db")


def _build_template(template: str) -> None:
    if os.path.exists(template):
        return
    import tempfile
    os.makedirs(os.path.dirname(template), exist_ok=True)
    with tempfile.TemporaryDirectory(dir=os.path.dirname(template)) as tmp:
        engine = make_engine(os.path.join(tmp, DB_NAME))
        migrate(engine)
        with engine.connect() as c:
            c.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        engine.dispose()
        os.replace(os.path.join(tmp, DB_NAME), template)


def _copy_template(path: str) -> bool:
    """Create a new instance DB by copying the migrations' result instead of running them
    (which imports Alembic: 0.4 s of every new run). False when no template can be had."""
    try:
        template = _template_path()
        with _MIGRATING:  # one thread builds it, the others wait and copy it
            _build_template(template)
        if current_revision(template) != SCHEMA_REVISION:
            return False
        tmp_path = path + ".new"
        with open(template, "rb") as src, open(tmp_path, "wb") as dst:  # (shutil: 3 ms to import)
            dst.write(src.read())
        os.chmod(tmp_path, 0o644)
        os.replace(tmp_path, path)
        return True
    except OSError:
        return False
