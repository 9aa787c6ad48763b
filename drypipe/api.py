"""The Python API over an instance directory: list tasks, read their outputs and times.

    from drypipe import Instance
    inst = Instance("./run1")
    for t in inst.tasks(state="failed"):
        print(t.key, t.state, t.out_log)

Reads go through SQLite in WAL mode: they never block or slow a running orchestrator.

The functions below Instance need no database when the task dir has what they read (a copy of an
instance on a remote host, a Slurm job's node); importing this module does not import SQLAlchemy."""
from __future__ import annotations

import fnmatch
import json
import os
import subprocess
import sys
from dataclasses import dataclass

from .conf import TaskConf
from .errors import DryPipeError
from .state import states as S


# the task table's columns a TaskInfo is made of, in the order of its fields
TASK_COLUMNS = "key, state, step, executer_type, job_id, launched_at, started_at, ended_at, message, id, spec, attempt"


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
    _spec: str | None  # the task's spec JSON; None: not read yet
    attempt: int = 0  # launches so far (attempt N is the last one)

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
        if self._spec is None:  # listed without it (Instance.tasks(spec=False)): read it now
            self._spec = Instance(self.instance_dir)._spec_of(self._id)
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
        from .state import reader
        self.instance_dir = os.path.abspath(instance_dir)
        path = reader.db_path(self.instance_dir)
        self._engine = None
        if not os.path.exists(path) or reader.current_revision(path) != reader.SCHEMA_REVISION:
            from .state import db  # says what is wrong (no instance, an older or newer schema)
            self._engine = db.open_db(self.instance_dir, create=False, upgrade=False, readonly=True)
        self._connect = reader.connector(path)

    @property
    def engine(self):
        """A read-only SQLAlchemy engine (made on first use: listings and status need none)."""
        if self._engine is None:
            from sqlalchemy import create_engine
            self._engine = create_engine("sqlite://", creator=self._connect)
        return self._engine

    def _rows(self, sql: str, params=()) -> list[tuple]:
        con = self._connect()
        try:
            return con.execute(sql, params).fetchall()
        finally:
            con.close()

    def tasks(self, state: str | None = None, key: str | None = None, spec: bool = True) -> list[TaskInfo]:
        """Tasks in creation order; state is a state name ('failed', 'completed', ...) and key a glob.
        With spec=False their specs are read only when asked for (100,000 tasks list in a tenth
        of a second)."""
        where, params = ("WHERE state = ?", (state,)) if state is not None else ("", ())
        return [t for t in self._infos(where, params, spec) if key is None or fnmatch.fnmatchcase(t.key, key)]

    def _infos(self, where: str, params, spec: bool = True) -> list[TaskInfo]:
        columns = TASK_COLUMNS if spec else TASK_COLUMNS.replace("spec", "NULL")
        return [self._info(r) for r in self._rows(f"SELECT {columns} FROM task {where} ORDER BY id", params)]

    def _info(self, row) -> TaskInfo:
        """The TaskInfo of a row of TASK_COLUMNS."""
        key, state, step, ex, job, la, sa, ea, msg, id_, spec, att = row
        return TaskInfo(key, state, step, ex, job, la, sa, ea, msg, self.instance_dir, id_, spec, att)

    def progress(self, now: float):
        """What `drypipe status` shows (observe/progress.py's Progress), computed by SQLite."""
        from .observe.snapshot import snapshot
        con = self._connect()
        try:
            return snapshot(lambda sql, params: con.execute(sql, params).fetchall(), now, self._info,
                            TASK_COLUMNS.replace("spec", "NULL"))
        finally:
            con.close()

    def _spec_of(self, task_id: int) -> str:
        return self._rows("SELECT spec FROM task WHERE id = ?", (task_id,))[0][0]

    def task(self, key: str) -> TaskInfo:
        """The task with exactly this key."""
        found = self._infos("WHERE key = ?", (key,))
        if not found:
            raise DryPipeError(f"no task {key!r} in {self.instance_dir}")
        return found[0]

    def task_conf(self, key: str) -> TaskConf:
        """The TaskConf a task runs with, as recorded in the database."""
        from sqlalchemy import select
        from .state.models import task_conf_table, task_table
        with self.engine.connect() as c:
            conf_json = c.execute(select(task_conf_table.c.json)
                                  .join(task_table, task_table.c.conf_id == task_conf_table.c.id)
                                  .where(task_table.c.key == key)).scalar_one_or_none()
        if conf_json is None:
            self.task(key)  # the error of an unknown key
        return TaskConf.from_dict(json.loads(conf_json))

    def outputs(self, key: str) -> dict:
        """Typed output variables, and output file paths, of a task."""
        from sqlalchemy import select
        from .dsl.values import parse_typed
        from .state.models import output_var_table
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
        from sqlalchemy import select
        from .state.models import task_table, transition_table as tr
        t = task_table.c
        q = select(t.key, tr.c.state, tr.c.step, tr.c.at).join(tr, tr.c.task_id == t.id).order_by(tr.c.id)
        if key is not None:
            q = q.where(t.key == key)
        out: dict[str, list] = {}
        with self.engine.connect() as c:
            for k, state, step, at in c.execute(q):
                out.setdefault(k, []).append((state, step, at))
        return out

    def attempts(self, key: str | None = None) -> list[dict]:
        """Every attempt of every task (or of the tasks whose key matches the glob `key`): rows
        of the `attempts` view as dicts, in task then attempt order (columns in README, "Seeing
        a run"; times ISO-8601 UTC, durations in ms, memory in bytes, *_epoch as UNIX times)."""
        with self.engine.connect() as c:
            res = c.exec_driver_sql("SELECT * FROM attempts ORDER BY task_id, attempt")
            cols = list(res.keys())
            rows = [dict(zip(cols, r)) for r in res]
        return [r for r in rows if key is None or fnmatch.fnmatchcase(r["name"], key)]

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

    def out_of_date(self, generator: str | None = None) -> dict[str, str]:
        """The completed tasks whose definition changed since they ran: key -> first reason
        ("code changed", "input x: 3 -> 4", "upstream b is out of date", ...), upstream first.
        generator: "module:function", else the one the instance was run with."""
        from .scheduler.why import report
        return report(self.instance_dir, generator).out_of_date()

    def why(self, key: str, generator: str | None = None) -> list[str]:
        """Why task key is out of date (or that it is not): the lines `drypipe why` prints."""
        from .scheduler.why import report
        return report(self.instance_dir, generator).explain(key)

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for t in self.tasks():
            counts[t.state] = counts.get(t.state, 0) + 1
        return counts


    # -- Slurm tasks and array parents ------------------------------------------------------
    def slurm_task(self, key: str) -> TaskInfo:
        """The task with exactly this key, which must run on Slurm."""
        t = self.task(key)
        if t.executer_type != "slurm":
            raise DryPipeError(f"task {key!r} is not a Slurm task (executer_type={t.executer_type!r})")
        return t

    def sbatch_command(self, key: str) -> str:
        """The shell command (`cd <instance dir> && sbatch ...`) that submits a Slurm task by hand.
        A task never launched has its task dir (launcher, sbatch-launcher.sh) written first, which
        needs it ready (its upstream tasks completed) and no orchestrator running on the instance."""
        from .executors.slurm import SlurmExecutor
        from .executors.slurm_text import shell_command
        t = self.slurm_task(key)
        conf = self.task_conf(key)
        if not os.path.exists(os.path.join(t.task_dir, "sbatch-launcher.sh")):
            from .scheduler.orchestrator import Orchestrator
            with Orchestrator(self.instance_dir) as orch:
                n = orch.graph.nodes[key]
                if n.state != S.READY:
                    raise DryPipeError(f"task {key!r} is {n.state_name}: it cannot be submitted before "
                                       "its upstream tasks completed")
                orch.materializer.materialize(n, S.READY, slurm=True)
        argv = SlurmExecutor(self.instance_dir).sbatch_argv_for_task(conf, key)
        return f"cd {shell_command([self.instance_dir])} && {shell_command(argv)}"

    def is_array_parent(self, name: str) -> bool:
        """Is `name` an array parent (drypipe array-create-parent) of this instance?"""
        from .scheduler import arrays
        return arrays.is_parent(self.instance_dir, name)

    def array_children(self, parent: str) -> list[str]:
        """The keys of an array parent's children, in array index order."""
        from .scheduler import arrays
        return [k for _, k, _ in arrays.read_children(self.instance_dir, parent)]

    def array_rsync_list(self, parent: str) -> list[str]:
        """The task and output dirs of an array parent's children, relative to the instance dir,
        for `rsync -r --files-from`."""
        from .scheduler import arrays
        return arrays.rsync_list(self.instance_dir, parent)

    # -- debugging a task -------------------------------------------------------------------
    def task_env(self, key: str) -> dict[str, str]:
        """The environment a task's steps run in: its task-env.sh (written when it is launched),
        sourced by bash."""
        info = self.task(key)
        env_file = os.path.join(info.task_dir, "task-env.sh")
        if not os.path.exists(env_file):
            raise DryPipeError(f"task {key!r} has not been launched yet: no environment")
        out = subprocess.run(["bash", "-c", '__pipeline_instance_dir="$1"; . "$2"; env -0',
                              "_", self.instance_dir, env_file], capture_output=True, check=True).stdout
        return dict(item.split("=", 1) for item in out.decode("utf-8", "surrogateescape").split("\0")
                    if "=" in item)

    def call(self, key: str, module_function: str):
        """Call the python function MODULE:FUNCTION with a task's arguments bound (its inputs,
        outputs and DryPipe variables, from task_env); return what it returns. For debugging a
        python call outside the pipeline: the current dir and the pipeline's code dir are put on
        sys.path and the task's environment into os.environ, in this process."""
        import importlib
        from .runtime.pycall import StepError, bind_arguments
        mod_name, sep, fn_name = module_function.partition(":")
        if not sep:
            raise DryPipeError(f"{module_function!r}: expected MODULE:FUNCTION")
        info = self.task(key)
        env = self.task_env(key)
        code_dir = env.get("__pipeline_code_dir")
        for p in (os.getcwd(), code_dir):
            if p and p not in sys.path:
                sys.path.insert(0, p)
        try:
            module = importlib.import_module(mod_name)
        except ImportError as e:
            raise DryPipeError(f"call {module_function!r}: module {mod_name!r} not found ({e})") from e
        f = getattr(module, fn_name, None)
        if not callable(f):
            raise DryPipeError(f"call {module_function!r}: module {mod_name!r} has no function {fn_name!r}")
        os.environ.update(env)
        try:
            kwargs = bind_arguments(f, info.spec, env)
        except StepError as e:
            raise DryPipeError(f"task {key!r}: {e}") from e
        return f(**kwargs)


# -- what needs no database when the task dir has it ----------------------------------------
def task_state_name(instance_dir: str, key: str) -> str:
    """A task's state as its task dir's state file names it (what polling a task reads), else,
    when it has none (never launched), as the database says."""
    from .state import statefile
    name = statefile.read(os.path.join(instance_dir, ".drypipe", key))
    if name is None:
        name = Instance(instance_dir).task(key).state_name
    return name


def task_env_text(instance_dir: str, key: str) -> str:
    """The text of a task's task-env.sh (written when it is launched)."""
    path = os.path.join(instance_dir, ".drypipe", key, "task-env.sh")
    if not os.path.exists(path):
        Instance(instance_dir).task(key)  # a clear error for an unknown key
        raise DryPipeError(f"task {key!r} has not been launched yet: its environment "
                           "is written when it is launched")
    with open(path) as f:
        return f.read()


def task_launcher(instance_dir: str, key: str, uploaded: bool = False) -> str:
    """The path of a task's `task` launcher, which runs it with no database access (as a Slurm
    job or a remote host does): written by `drypipe prepare` or, with uploaded, uploaded to this
    copy of the instance on a remote host."""
    script = os.path.join(instance_dir, ".drypipe", key, "task")
    if uploaded:
        if not os.path.exists(script):
            raise DryPipeError(f"task {key!r} was not uploaded to {instance_dir}")
        return script
    from .dsl.task import check_key
    check_key(key)
    if not os.path.exists(script):
        raise DryPipeError(f"task {key!r} has no launcher in {instance_dir} (run `drypipe prepare` first)")
    return script


def upgrade_instance(instance_dir: str) -> tuple[str | None, str | None]:
    """Apply the database migrations of this DryPipe version to an existing instance; return its
    schema revision before and after."""
    from .state import db
    path = db.db_path(instance_dir)
    before = db.current_revision(path) if os.path.exists(path) else None
    db.open_db(instance_dir, create=False, upgrade=True).dispose()
    return before, db.current_revision(path)
