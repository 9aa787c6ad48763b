"""The Python API over an instance directory: list tasks, read their outputs and times.

    from drypipe import Instance
    inst = Instance("./run1")
    for t in inst.tasks(state="failed"):
        print(t.key, t.state, t.out_log)

Reads go through SQLite in WAL mode: they never block or slow a running orchestrator."""
from __future__ import annotations

import fnmatch
import json
import os
from dataclasses import dataclass

from sqlalchemy import select

from .dsl.values import parse_typed
from .state import db
from .state import states as S
from .state.models import output_var_table, task_table


@dataclass
class TaskInfo:
    key: str
    state: str
    step: int | None
    executer_type: str
    job_id: str | None
    launched_at: float | None
    started_at: float | None
    ended_at: float | None
    message: str | None
    instance_dir: str
    _id: int
    _spec: str

    @property
    def state_name(self) -> str:
        return S.format(self.state, self.step)

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return self.ended_at - self.started_at

    @property
    def spec(self) -> dict:
        return json.loads(self._spec)

    @property
    def task_dir(self) -> str:
        return os.path.join(self.instance_dir, ".drypipe", self.key)

    @property
    def output_dir(self) -> str:
        return os.path.join(self.instance_dir, "output", self.key)

    @property
    def out_log(self) -> str:
        return os.path.join(self.task_dir, "out.log")


class Instance:
    """A pipeline instance directory, opened for reading (and scripted restarts)."""

    def __init__(self, instance_dir: str):
        self.instance_dir = os.path.abspath(instance_dir)
        self.engine = db.open_db(self.instance_dir, create=False, upgrade=False, readonly=True)

    def tasks(self, state: str | None = None, key: str | None = None) -> list[TaskInfo]:
        """Tasks in creation order; state is a state name ('failed', 'completed', ...) and key a glob."""
        q = self._select()
        if state is not None:
            q = q.where(task_table.c.state == state)
        return [t for t in self._infos(q) if key is None or fnmatch.fnmatchcase(t.key, key)]

    @staticmethod
    def _select():
        t = task_table.c
        return select(t.id, t.key, t.state, t.step, t.executer_type, t.job_id, t.launched_at, t.started_at,
                      t.ended_at, t.message, t.spec).order_by(t.id)

    def _infos(self, q) -> list[TaskInfo]:
        with self.engine.connect() as c:
            rows = c.execute(q).all()
        return [TaskInfo(r.key, r.state, r.step, r.executer_type, r.job_id, r.launched_at, r.started_at,
                         r.ended_at, r.message, self.instance_dir, r.id, r.spec) for r in rows]

    def task(self, key: str) -> TaskInfo:
        """The task with exactly this key."""
        found = self._infos(self._select().where(task_table.c.key == key))
        if not found:
            from .errors import DryPipeError
            raise DryPipeError(f"no task {key!r} in {self.instance_dir}")
        return found[0]

    def outputs(self, key: str) -> dict:
        """Typed output variables, and output file paths, of a task."""
        info = self.task(key)
        spec = info.spec
        with self.engine.connect() as c:
            raw = dict(c.execute(select(output_var_table.c.name, output_var_table.c.value)
                                 .where(output_var_table.c.task_id == info._id)).all())
        out = {}
        for name, o in spec["outputs"].items():
            if o["kind"] == "var":
                if name in raw:
                    out[name] = parse_typed(o["type"], raw[name])
            elif o["kind"] == "file":
                out[name] = os.path.join(info.output_dir, o["path"])
        return out

    def transitions(self, key: str | None = None) -> dict[str, list[tuple[str, int | None, float]]]:
        """Task key -> its (state, step, at) transitions in order."""
        from .state.models import transition_table as tr
        t = task_table.c
        q = select(t.key, tr.c.state, tr.c.step, tr.c.at).join(tr, tr.c.task_id == t.id).order_by(tr.c.id)
        if key is not None:
            q = q.where(t.key == key)
        out: dict[str, list] = {}
        with self.engine.connect() as c:
            for k, state, step, at in c.execute(q):
                out.setdefault(k, []).append((state, step, at))
        return out

    def execution_times(self, key: str | None = None) -> list[dict]:
        """Per task: key, state, duration (s) and per step durations (s)."""
        from .reports import step_durations
        trans = self.transitions()
        return [{"key": t.key, "state": t.state_name, "duration": t.duration,
                 "steps": step_durations(trans.get(t.key, []))}
                for t in self.tasks(key=key)]

    @property
    def running_orchestrator(self) -> int | None:
        """pid of the orchestrator running on this instance, if any."""
        from .state.lock import holder_pid
        return holder_pid(self.instance_dir)

    def restart(self, keys, at_step: int | None = None, reset: bool = False, wait: bool = True,
                max_parallel: int | None = None):
        """Rerun tasks (a key, glob or list): at their failed step (or at_step), or from step 0
        with their outputs cleared when reset. Returns the RunResult when wait."""
        from .scheduler.orchestrator import Orchestrator
        if isinstance(keys, str):
            keys = [t.key for t in self.tasks(key=keys)] or [keys]
        with Orchestrator(self.instance_dir, max_parallel=max_parallel) as orch:
            orch.restart_tasks(keys, at_step=at_step, reset=reset)
            return orch.run_tasks(keys, wait=wait)

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for t in self.tasks():
            counts[t.state] = counts.get(t.state, 0) + 1
        return counts
