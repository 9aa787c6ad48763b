"""Persistence of the orchestrator's task graph: loads it, inserts new tasks, and flushes the
changes of each scheduling round in one transaction (the orchestrator is the only writer)."""
from __future__ import annotations

import marshal
import os
import sqlite3
import sys
import time

from ..errors import InstanceError
from . import sql
from . import states as S
from .db import PRAGMAS, set_pragmas

STAGE_EVERY = 2_000  # new tasks buffered before they go to the writer of the generation
STAGER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "stager.py")

# The SQL comes from state/sql.py, generated from the model tables by state/sqlgen.py: plain
# sqlite3 here, so that running a pipeline never imports SQLAlchemy. flush() hands plain tuples
# to sqlite3's executemany (100k rows in a few hundred ms).


def _connect(path: str) -> sqlite3.Connection:
    """The orchestrator's writer connection."""
    con = sqlite3.connect(path, check_same_thread=False)
    set_pragmas(con)
    return con


class Store:
    def __init__(self, path: str | None, dry_run: bool = False):
        """path: the instance DB (db.open_path), None for an instance with no database yet (a dry
        run of a new instance). dry_run: flush() discards what was buffered; nothing is ever
        written, and the DB is only read (read-only connections, state/reader.py)."""
        self.dry_run = dry_run
        self.path = path
        self._read = None
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
        self._staged = False  # rows written into the open transaction, to commit at the next flush
        self._definitions: list[tuple] = []
        self._attempts: dict[tuple[int, int], object] = {}  # (task id, attempt) -> Attempt to save
        self._attempts_gone: list[tuple[int, int]] = []
        self._fingerprints: list[tuple[int, int, str]] = []
        self._stager: Stager | None | bool = None  # the writer process of a big generation (False: none to be had)
        self._finishing: list = []  # writer processes that committed, checkpointing before they exit
        self._gen: tuple[bool, int, int] | None = None  # begin_generation(): (may stage, first conf id,
        # new tasks buffered before)

    # -- reading --------------------------------------------------------------------------
    def _rows(self, query: str, params=()) -> list[tuple]:
        if self.path is None:
            return []
        if self._read is None:
            if self.dry_run:
                from .reader import connector
                self._read = connector(self.path)()
            else:
                self._read = self._writer()
        return self._read.execute(query, params).fetchall()

    def load_meta(self) -> dict[str, str]:
        return dict(self._rows(sql.LOAD_META))

    def load_confs(self) -> dict[int, str]:
        rows = self._rows(sql.LOAD_CONFS)
        for cid, js in rows:
            self._conf_ids[js] = cid
            self._next_conf_id = max(self._next_conf_id, cid + 1)
        return {cid: js for cid, js in rows}

    def load_tasks(self) -> tuple[list[tuple], dict[int, tuple] | None]:
        """Rows (id, key, state, step, executer_type, conf_id, spec, created_at), in creation
        order, and by task id (job_id, launched_at, started_at, ended_at, message, attempt,
        retry) of the tasks where one of them is set (of any other task: None, 0 and 0). When
        most tasks completed, whole rows instead, with those 7 columns last, and None."""
        counted = self._rows(sql.COUNT_TASKS)
        if not counted or not counted[0][0]:  # (no database yet: a dry run)
            return [], {}
        total = counted[0][0]
        (completed,), = self._rows(sql.COUNT_IN_STATE, (S.COMPLETED,))
        if completed * 2 > total:  # (each column read costs as much as a row: read once what most have)
            return self._rows(sql.LOAD_TASKS_WHOLE), None
        runs = {r[0]: r[1:] for r in self._rows(sql.LOAD_TASK_RUNS)}
        return self._rows(sql.LOAD_TASKS), runs

    def load_attempts(self, running_only: bool = False):
        """Rows of the attempt table (every column, in the table's order); with running_only,
        the highest attempt of each task."""
        return self._rows(sql.LOAD_LAST_ATTEMPTS if running_only else sql.LOAD_ATTEMPTS)

    def load_outputs(self) -> dict[int, dict[str, str]]:
        out: dict[int, dict[str, str]] = {}
        for tid, name, value in self._rows(sql.LOAD_OUTPUTS):
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
        if len(self._new_tasks) >= STAGE_EVERY and (self._gen is None or self._gen[0]):
            self._stage_if_due()

    def _stage_if_due(self) -> None:
        """Stage the buffered new tasks when there are STAGE_EVERY of them and a DB to write."""
        if len(self._new_tasks) >= STAGE_EVERY and not self.dry_run and self.path is not None:
            self._stage_new_tasks()

    # -- a generation: its new tasks are recorded as it yields them, or not at all ------------
    def begin_generation(self) -> None:
        """The tasks added from now on are those of a generator still running: the writer
        process may insert them while it runs, and drop_generation() forgets them all. (When
        rows of an earlier generation wait for the next flush, nothing is staged until
        end_generation(): dropping the staged transaction would drop them too.)"""
        self._gen = (not (self._staged or self._new_tasks or self._pending_conf), self._next_conf_id,
                     len(self._new_tasks))

    def end_generation(self) -> None:
        """The generation stands: its tasks are committed at the next flush."""
        held = self._gen is not None and not self._gen[0]  # (staging was held back: do it now)
        self._gen = None
        if held:
            self._stage_if_due()

    def drop_generation(self) -> None:
        """The generator failed: forget the tasks and confs added since begin_generation()
        (what was staged is rolled back: it held nothing else)."""
        if self._gen is None:
            return
        may_stage, first_conf, before = self._gen
        self._gen = None
        if may_stage and self._staged:
            self._rollback()
        del self._new_tasks[before:]
        for js, cid in list(self._conf_ids.items()):
            if cid >= first_conf:
                del self._conf_ids[js]
        self._pending_conf = [c for c in self._pending_conf if c[0] < first_conf]

    def _stage_new_tasks(self) -> None:
        """Write the new tasks buffered so far into the open transaction, which the next flush
        commits with the rest of the round: their rows (spec JSON) then leave this process's
        memory (a 100k-task generator held them all until its end). The transaction is that of
        a writer process (state/stager.py), which inserts them while the generator goes on;
        the next flush sends it the rest of the round and has it commit."""
        if self._stager is None:
            self._stager = Stager.start(self.path) or False
        w = self._stager or OwnWriter(self._writer())
        try:
            if self._pending_conf:  # (a task's conf row first: foreign keys are checked at once)
                w.send(sql.INSERT_CONF, self._pending_conf)
                self._pending_conf.clear()
            w.send(sql.INSERT_TASK, self._new_tasks)
        except BaseException:
            self._rollback()
            raise
        self._new_tasks.clear()
        self._staged = True

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
        rows = self._rows(sql.LOAD_FINGERPRINT, (task_id, attempt))
        return rows[0][0] if rows else None

    def set_outputs(self, node, values: dict[str, str]) -> None:
        self._outputs.extend((node.id, k, v) for k, v in values.items())

    @property
    def has_pending(self) -> bool:
        return bool(self._staged or self._new_tasks or self._dirty or self._transitions or self._outputs
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
        # a big generation's writer process holds the round's transaction: all goes there
        w = self._stager or OwnWriter(self._writer())
        try:
            for statement, rows in self._writes():
                w.send(statement, rows)
            w.commit()
        except BaseException as e:
            self._rollback()
            if isinstance(e, sqlite3.OperationalError) and ("readonly" in str(e) or "read-only" in str(e)):
                raise InstanceError(f"{self.path}: the instance database is not writable") from e
            raise
        if self._stager:
            self._finishing = [p for p in self._finishing if p.poll() is None]
            self._finishing.append(self._stager.proc)  # (committed; it checkpoints, then exits)
            self._stager = None
        self._discard()
        if self.on_commit is not None:
            self.on_commit()

    def _writes(self) -> list[tuple[str, list]]:
        """The buffered writes of the round: (statement, rows), in the order they are made."""
        w = []
        if self._meta:
            w.append((sql.SET_META, list(self._meta.items())))
        if self._pending_conf:
            w.append((sql.INSERT_CONF, self._pending_conf))
        if self._new_tasks:
            w.append((sql.INSERT_TASK, self._new_tasks))
        if self._dirty:
            w.append((sql.UPDATE_TASK_STATE,
                      [(n.state, n.step, n.job_id, n.launched_at, n.started_at, n.ended_at, n.message, n.attempt,
                        n.retry, n.id)
                       for n in self._dirty.values()]))
        if self._definitions:
            w.append((sql.UPDATE_TASK_DEFINITION, self._definitions))
        if self._outputs:
            w.append((sql.SET_OUTPUT, self._outputs))
        if self._transitions:
            w.append((sql.INSERT_TRANSITION, self._transitions))
        if self._attempts_gone:
            w.append((sql.DELETE_ATTEMPT, self._attempts_gone))
        if self._attempts:
            w.append((sql.SAVE_ATTEMPT, [a.row() for a in self._attempts.values()]))
        if self._fingerprints:
            w.append((sql.SAVE_FINGERPRINT, self._fingerprints))
        return w

    def _rollback(self) -> None:
        if self._stager:
            self._stager.abort()
            self._stager = None
        if self._raw is not None:
            self._raw.rollback()
        self._staged = False  # (the staged rows went with it)

    def _discard(self) -> None:
        self._staged = False
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

    def _writer(self) -> sqlite3.Connection:
        """The orchestrator's single writer connection, held for the run."""
        if self._raw is None:
            self._raw = _connect(self.path)
        return self._raw

    def close(self) -> None:
        if self._stager:  # (not committed: it rolls back)
            self._stager.abort()
            self._stager = None
        for proc in self._finishing:
            proc.wait()
        self._finishing = []
        for con in {id(c): c for c in (self._raw, self._read) if c is not None}.values():
            con.close()
        self._raw = self._read = None

    def clear_outputs(self, node) -> None:
        con = self._writer()
        with con:
            con.execute(sql.DELETE_OUTPUTS, (node.id,))


def now() -> float:
    return time.time()



class OwnWriter:
    """The store's own connection, written to like a Stager."""

    def __init__(self, con: sqlite3.Connection):
        self.con = con

    def send(self, statement: str, rows: list) -> None:
        self.con.executemany(statement, rows)

    def commit(self) -> None:
        self.con.commit()


class Stager:
    """The writer process of a big generation (state/stager.py): what send() gives it is
    executed in its transaction, committed by commit(); abort() or this process's death rolls
    it back."""

    def __init__(self, proc):
        self.proc = proc

    @classmethod
    def start(cls, path: str) -> "Stager | None":
        """None where no Python can be run again (sys.executable empty) or started."""
        if not sys.executable:
            return None
        import subprocess
        try:
            return cls(subprocess.Popen([sys.executable, "-I", "-S", STAGER, path, *PRAGMAS],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True))
        except OSError:
            return None

    def _frame(self, frame: tuple) -> None:
        data = marshal.dumps(frame)
        try:
            self.proc.stdin.write(len(data).to_bytes(8, "big"))
            self.proc.stdin.write(data)
        except (BrokenPipeError, ValueError) as e:
            raise InstanceError("the writer process of this generation exited (state/stager.py)") from e

    def send(self, statement: str, rows: list) -> None:
        self._frame(("rows", statement, rows))

    def commit(self) -> None:
        self._frame(("commit",))
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        answer = self.proc.stdout.readline().decode("utf-8", "replace").rstrip("\n")
        self.proc.stdout.close()
        if answer == "ok":
            return  # (it checkpoints the WAL before it exits: Store.close waits for that)
        self.proc.wait()
        if not answer.startswith("error "):
            raise InstanceError("the writer process of this generation exited before it committed (state/stager.py)")
        _, kind, message = (answer.split(" ", 2) + [""])[:3]
        error = getattr(sqlite3, kind, None)
        if not (isinstance(error, type) and issubclass(error, sqlite3.Error)):
            error = sqlite3.DatabaseError
        raise error(message)

    def abort(self) -> None:
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass
        self.proc.wait()
