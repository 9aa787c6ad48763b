"""The `dsl` object handed to DAG generators: task(), waits, matchers and sub pipelines."""
from __future__ import annotations

import fnmatch
import os

from ..errors import InvalidPipeline
from .task import Task, TaskBuilder, fetch_output
from .values import File, FileSet, GlobExpression, Val, Var


class DAGBuilder:
    """One generator invocation's view of the pipeline: a prefix, a default TaskConf, the states."""

    def __init__(self, oracle, default_conf, prefix: str = "", root: "DAGBuilder | None" = None):
        self.oracle = oracle
        self.default_conf = default_conf
        self._prefix = prefix
        self.root = root or self
        if root is None:
            self.generated: dict[str, Task] = {}
            self.new_keys: list[str] = []
            self.blocked_waits: list[tuple[str, tuple[str, ...]]] = []

    # -- declarations -------------------------------------------------------------------
    def task(self, key=None, task_conf=None) -> TaskBuilder:
        if key is None:
            raise InvalidPipeline("dsl.task() needs a key: dsl.task(key='my-task')")
        if not isinstance(key, str):
            raise InvalidPipeline(f"invalid task key {key!r}: keys are strings")
        return TaskBuilder(self, self._prefix + key, task_conf)

    @staticmethod
    def val(v) -> Val:
        return Val(v)

    @staticmethod
    def var(type_=str) -> Var:
        return Var(type_)

    @staticmethod
    def file(name) -> File:
        return File(name)

    @staticmethod
    def fileset(glob) -> FileSet:
        return FileSet(glob)

    def file_in_pipeline_instance_dir(self, name) -> str:
        return os.path.join(self.oracle.instance_dir, name)

    @property
    def pipeline_instance_dir(self) -> str:
        return self.oracle.instance_dir

    def sub_pipeline(self, gen_or_pipeline, prefix: str) -> "SubPipeline":
        conf = self.default_conf
        gen = gen_or_pipeline
        # a Pipeline (dsl/pipeline.py, which imports this module: not imported back) is known by
        # its dag_gen; a generator function has none
        dag_gen = getattr(gen_or_pipeline, "dag_gen", None)
        if dag_gen is not None:
            gen = dag_gen
            conf = getattr(gen_or_pipeline, "task_conf", None) or conf
        if not callable(gen):
            raise InvalidPipeline(f"dsl.sub_pipeline({gen_or_pipeline!r}): not a DAG generator or pipeline")
        return SubPipeline(gen, DAGBuilder(self.oracle, conf, self._prefix + prefix, self.root))

    # -- waits ----------------------------------------------------------------------------
    def wait_for_tasks(self, *tasks_or_keys):
        if not tasks_or_keys:
            raise InvalidPipeline("dsl.wait_for_tasks() needs at least one task or key")
        keys = tuple(t.key if isinstance(t, Task) else self._prefix + str(t) for t in tasks_or_keys)
        state_of = self.oracle.state_of
        if all(state_of(k) == "completed" for k in keys):
            tasks = tuple(self._task_for(k) for k in keys)
            return [tasks[0] if len(tasks) == 1 else tasks]
        self.root.blocked_waits.append(("keys", keys))
        return []

    def wait_for_matching_tasks(self, *globs):
        if not globs:
            raise InvalidPipeline("dsl.wait_for_matching_tasks() needs at least one glob")
        globs = tuple(self._prefix + g for g in globs)
        matchers = []
        for g in globs:
            keys = self._matching_completed(g)
            if keys is None:
                self.root.blocked_waits.append(("globs", globs))
                return []
            matchers.append(Matcher(g, keys, self))
        return [matchers[0] if len(matchers) == 1 else tuple(matchers)]

    def _matching_completed(self, glob):
        """Keys matching glob if there is at least one and all are completed, else None."""
        root, oracle = self.root, self.oracle
        for k in root.new_keys:
            if fnmatch.fnmatchcase(k, glob):
                return None
        keys = oracle.keys_matching(glob)
        if not keys:
            return None
        state_of = oracle.state_of
        for k in keys:
            if state_of(k) != "completed":
                return None
        return sorted(keys)

    def _task_for(self, key) -> Task:
        t = self.root.generated.get(key)
        if t is not None:
            return t
        spec = self.oracle.spec_of(key)
        if spec is None:
            raise InvalidPipeline(f"unknown task {key!r}")
        return Task.from_spec(key, spec, None, self.root)

    def resolve_val_ref(self, ref):
        """dsl.val(t.outputs.x): the value when t completed, else the reference itself."""
        if self.oracle.state_of(ref.task.key) == "completed" and ref.decl["kind"] == "var":
            return ref.fetch()
        return ref


class Matcher:
    """What dsl.wait_for_matching_tasks(glob) yields: the completed tasks matching the glob."""

    def __init__(self, glob: str, keys: list[str], dsl: DAGBuilder):
        self.glob = glob
        self.keys = keys
        self._dsl = dsl

    @property
    def tasks(self) -> list[Task]:
        return [self._dsl._task_for(k) for k in self.keys]

    @property
    def all(self) -> "MatcherOutputs":
        return MatcherOutputs(self)


class MatcherOutputs:
    def __init__(self, matcher):
        self._matcher = matcher

    def __getattr__(self, name):
        return MatcherOutput(self._matcher, name)


class MatcherOutput:
    """matcher.all.x: output x across all matched tasks."""

    def __init__(self, matcher: Matcher, name: str):
        self._matcher = matcher
        self.name = name

    def _decl(self, task):
        decl = task.output_decls.get(self.name)
        if decl is None:
            raise InvalidPipeline(f"task {task.key!r} (matched by {self._matcher.glob!r}) declares no "
                                  f"output {self.name!r}")
        return decl

    def fetch(self) -> list:
        m = self._matcher
        return [fetch_output(t.key, self.name, self._decl(t), m._dsl.root) for t in m.tasks]

    def as_glob_expression(self) -> GlobExpression:
        m = self._matcher
        decl = self._decl(m._dsl._task_for(m.keys[0]))
        if decl["kind"] == "file":
            tail = decl["path"]
        elif decl["kind"] == "fileset":
            tail = decl["glob"]
        else:
            raise InvalidPipeline(f"matcher {m.glob!r}: output {self.name!r} is a variable, "
                                  "as_glob_expression() needs a file or fileset")
        return GlobExpression(f"output/{m.glob}/{tail}", m._dsl.oracle.instance_dir)


class SubPipeline:
    """dsl.sub_pipeline(gen, prefix): yield it to include its tasks, keys prefixed."""

    def __init__(self, gen, dsl: DAGBuilder):
        self._gen = gen
        self.dsl = dsl

    def iter_items(self):
        return self._gen(self.dsl)

    def wait_for_tasks(self, *keys):
        return self.dsl.wait_for_tasks(*keys)

    def wait_for_matching_tasks(self, *globs):
        return self.dsl.wait_for_matching_tasks(*globs)
