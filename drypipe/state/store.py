"""Persistence of the orchestrator's task graph: loads it, inserts new tasks, and flushes the
changes of each scheduling round in one transaction (the orchestrator is the only writer)."""
from __future__ import annotations

import json
import sqlite3
import time

from sqlalchemy import select
from sqlalchemy.engine import Engine

from ..errors import InstanceError
from .models import meta_table, output_var_table, task_conf_table, task_table


class Store:
    def __init__(self, engine: Engine):
        self.engine = engine
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

    # -- reading --------------------------------------------------------------------------
    def load_meta(self) -> dict[str, str]:
        with self.engine.connect() as c:
            return {r.name: r.value for r in c.execute(select(meta_table))}

    def load_confs(self) -> dict[int, str]:
        with self.engine.connect() as c:
            rows = c.execute(select(task_conf_table.c.id, task_conf_table.c.json)).all()
        for cid, js in rows:
            self._conf_ids[js] = cid
            self._next_conf_id = max(self._next_conf_id, cid + 1)
        return {cid: js for cid, js in rows}

    def load_tasks(self):
        """Rows (id, key, state, step, executer_type, conf_id, spec, job_id, created_at,
        launched_at, started_at, ended_at, message), in creation order."""
        t = task_table.c
        with self.engine.connect() as c:
            return c.execute(select(t.id, t.key, t.state, t.step, t.executer_type, t.conf_id, t.spec,
                                    t.job_id, t.created_at, t.launched_at, t.started_at, t.ended_at,
                                    t.message).order_by(t.id)).all()

    def load_outputs(self) -> dict[int, dict[str, str]]:
        out: dict[int, dict[str, str]] = {}
        with self.engine.connect() as c:
            for tid, name, value in c.execute(select(output_var_table.c.task_id, output_var_table.c.name,
                                                     output_var_table.c.value)):
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

    def set_outputs(self, node, values: dict[str, str]) -> None:
        self._outputs.extend((node.id, k, v) for k, v in values.items())

    @property
    def has_pending(self) -> bool:
        return bool(self._new_tasks or self._dirty or self._transitions or self._outputs
                    or self._pending_conf or self._meta or self._definitions)

    def flush(self) -> None:
        if not self.has_pending:
            return
        if self._raw is None:
            # the orchestrator's single writer connection, held for the run (no pool round trip)
            self._raw = self.engine.raw_connection()
        cur = self._raw.cursor()
        x = cur.executemany
        try:
            if self._meta:
                x("INSERT OR REPLACE INTO instance_meta (name, value) VALUES (?, ?)", list(self._meta.items()))
            if self._pending_conf:
                x("INSERT INTO task_conf (id, json) VALUES (?, ?)", self._pending_conf)
            if self._new_tasks:
                x("INSERT INTO task (id, key, state, step, executer_type, conf_id, spec, created_at) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", self._new_tasks)
            if self._dirty:
                x("UPDATE task SET state=?, step=?, job_id=?, launched_at=?, started_at=?, ended_at=?, "
                  "message=? WHERE id=?",
                  [(n.state, n.step, n.job_id, n.launched_at, n.started_at, n.ended_at, n.message, n.id)
                   for n in self._dirty.values()])
            if self._definitions:
                x("UPDATE task SET spec=?, conf_id=? WHERE id=?", self._definitions)
            if self._outputs:
                x("INSERT OR REPLACE INTO output_var (task_id, name, value) VALUES (?, ?, ?)", self._outputs)
            if self._transitions:
                x("INSERT INTO transition (task_id, state, step, at) VALUES (?, ?, ?, ?)", self._transitions)
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
        self._meta.clear()
        self._pending_conf.clear()
        self._new_tasks.clear()
        self._dirty.clear()
        self._outputs.clear()
        self._transitions.clear()
        self._definitions.clear()

    def update_definition(self, node, spec_json: str) -> None:
        self._definitions.append((spec_json, node.conf_id, node.id))

    def close(self) -> None:
        if self._raw is not None:
            self._raw.close()
            self._raw = None

    def clear_outputs(self, node) -> None:
        with self.engine.begin() as c:
            c.exec_driver_sql("DELETE FROM output_var WHERE task_id=?", (node.id,))


def now() -> float:
    return time.time()


dumps = json.JSONEncoder(separators=(",", ":")).encode
