"""Tasks: the builder chain dsl.task(...).inputs(...).outputs(...).calls(...)() and its result."""
from __future__ import annotations

import os
import re
from json.encoder import encode_basestring_ascii as _quoted

from ..conf import TaskConf
from ..errors import InvalidPipeline
from ..jsontext import dumps
from .values import (TYPES_BY_NAME, File, FileHandle, FileSet, GlobExpression, Val, Var,
                     format_typed, parse_typed, type_name)

KEY_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")
# what KEY_RE accepts but '.' (a key with a dot may be reserved): a key made of these chars, the
# first alphanumeric, is valid (str.strip: a third of the cost of the match, 100k-task DAGs)
_KEY_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


# A task's dir is .drypipe/<key>/, beside what DryPipe keeps in .drypipe/ itself: a key may not
# be one of those names. Reserved: every name starting with `_` or `.` (_runtime, _arrays, _code,
# _python, write probes; KEY_RE refuses them already), the database and SQLite's companions
# (drypipe.db, -wal, -shm, -journal, the .new of its creation: every `drypipe.db*`), the
# `state.*` markers of service mode, and the names below. Compared case-insensitively, for
# case-insensitive filesystems (macOS).
RESERVED_KEYS = frozenset({"orchestrator.lock", "drypipe.log", "instance.log",
                           "service.lock", "service.log"})
RESERVED_KEY_PREFIXES = ("_", ".", "drypipe.db", "state.")


_RESERVED_FIRST = frozenset("dDoOiIsS")  # the first letters of the reserved names and prefixes
# that KEY_RE lets through (drypipe.db*, state.*, orchestrator.lock, instance.log, service.*)


def check_key(key) -> str:
    if not isinstance(key, str) or not KEY_RE.match(key) or ".." in key:
        raise InvalidPipeline(
            f"invalid task key {key!r}: keys match [A-Za-z0-9][A-Za-z0-9._-]* with no '..'")
    if key[0] not in _RESERVED_FIRST:
        return key
    low = key.lower()
    if low in RESERVED_KEYS or low.startswith(RESERVED_KEY_PREFIXES):
        raise InvalidPipeline(
            f"invalid task key {key!r}: reserved for DryPipe's own files in .drypipe/ (keys may not "
            f"be {', '.join(sorted(RESERVED_KEYS))}, nor start with _, ., drypipe.db or state.)")
    return key


def mark_python_call(f):
    """Mark f as a python call (@DryPipe.python_call()): calls(f) accepts it. Returns f."""
    f._drypipe_python_call = True
    return f


def is_python_call(f) -> bool:
    """Was f decorated with @DryPipe.python_call()?"""
    return bool(getattr(f, "_drypipe_python_call", False))


_GOOD_NAMES: set[str] = set()


def _check_name(key: str, clause: str, name: str):
    if name in _GOOD_NAMES:
        return
    if not NAME_RE.match(name) or name.startswith("__"):
        raise InvalidPipeline(f"task {key!r}: {clause} name {name!r} is not a valid variable name "
                              "(letters, digits, _; not starting with __)")
    _GOOD_NAMES.add(name)


class OutputRef:
    """t.outputs.x: a reference to an output of a task, usable as an input downstream."""
    __slots__ = ("task", "name", "decl")

    def __init__(self, task: "Task", name: str, decl: dict):
        self.task = task
        self.name = name
        self.decl = decl

    def fetch(self):
        """The value of this output; the task must be completed."""
        return fetch_output(self.task.key, self.name, self.decl, self.task._dsl)

    def __repr__(self):
        return f"<output {self.name} of task {self.task.key}>"


def fetch_output(key: str, name: str, decl: dict, dsl):
    oracle = dsl.oracle
    if oracle.state_of(key) != "completed":
        raise InvalidPipeline(f"task {key!r}: outputs.{name}.fetch() called before the task completed "
                              "(fetch inside a dsl.wait_for_tasks(...) loop)")
    kind = decl["kind"]
    out_rel = f"output/{key}"
    if kind == "var":
        values = oracle.output_values(key)
        if name not in values:
            raise InvalidPipeline(f"task {key!r}: output variable {name!r} has no value")
        return parse_typed(decl["type"], values[name])
    base = os.path.join(oracle.instance_dir, out_rel)
    if kind == "file":
        rel = f"{out_rel}/{decl['path']}"
        return FileHandle(os.path.join(oracle.instance_dir, rel), rel, key)
    import glob as _glob
    matches = sorted(_glob.glob(os.path.join(_glob.escape(base), decl["glob"])))
    return [FileHandle(p, os.path.relpath(p, oracle.instance_dir), key) for p in matches]


class Outputs:
    """t.outputs: t.outputs.x is the OutputRef of output x; an undeclared name raises
    InvalidPipeline. Every name is looked up in the task's declarations first (no failed
    attribute lookup before, nothing kept per task: 100k-task DAGs)."""
    __slots__ = ("_task",)

    def __init__(self, task):
        self._task = task  # (a plain slot store: no __setattr__ here)

    def __getattribute__(self, name):
        task = _outputs_task(self)  # (the slot's descriptor: object.__getattribute__ costs twice as much)
        decl = task.output_decls.get(name)
        if decl is not None:
            return OutputRef(task, name, decl)
        if name.startswith("__"):  # (what Python itself asks of any object)
            return object.__getattribute__(self, name)
        raise InvalidPipeline(f"task {task.key!r} declares no output {name!r} "
                              f"(outputs: {', '.join(task.output_decls) or 'none'})")


_outputs_task = Outputs.__dict__["_task"].__get__


class Task:
    """A finished task declaration, as yielded by a DAG generator. Its spec is kept as the JSON
    text the database holds (spec_json) and as the builder's compact record of its inputs and
    steps, from which spec() builds the dicts when asked: most tasks of a big DAG are only
    compared with their recorded text, or recorded."""
    __slots__ = ("key", "conf", "output_decls", "upstream", "scripts", "_dsl", "_json", "_inputs", "_steps",
                 "__weakref__")

    def __init__(self, key, conf, inputs, output_decls, steps, upstream, dsl, json_text, scripts=()):
        """inputs, steps: as TaskBuilder records them (its _inputs and _steps)."""
        self.key = key
        self.conf = conf
        self.output_decls = output_decls  # name -> decl (the spec's "outputs"): t.outputs.x
        self.upstream = upstream  # the keys of the tasks whose outputs it consumes
        self.scripts = scripts  # the paths of its steps that are scripts of the pipeline's code dir
        self._dsl = dsl
        self._json = json_text
        self._inputs = inputs
        self._steps = steps

    @property
    def outputs(self) -> Outputs:
        return Outputs(self)

    def spec(self) -> dict:
        """The JSON-able definition persisted in the DB and in task-conf.json: inputs, outputs,
        steps (new dicts at each call)."""
        return {"inputs": self.inputs, "outputs": {k: dict(d) for k, d in self.output_decls.items()},
                "steps": self.steps}

    @property
    def inputs(self) -> list[dict]:
        inputs = []
        for i in self._inputs:  # (inline: the spec of every completed task of a DAG yielded again)
            if type(i) is not tuple:
                inputs.append(dict(i))
            elif len(i) == 3:
                inputs.append({"name": i[0], "kind": "value", "type": i[1], "value": i[2]})
            else:
                inputs.append({"name": i[0], "kind": "file", "path": i[1], "task": i[2]})
        return inputs

    @property
    def steps(self) -> list[dict]:
        return [{"kind": "bash", "snippet": s} if type(s) is str else dict(s) for s in self._steps]

    def spec_json(self) -> str:
        """jsontext.dumps(self.spec()): the text the database holds, which tells whether a task
        yielded again is the one recorded. The builder writes it clause by clause (a third of the
        cost of encoding dicts afterwards; 100k-task DAGs)."""
        return self._json

    @classmethod
    def from_spec(cls, key, spec, conf, dsl) -> "Task":
        upstream = {i["task"] for i in spec["inputs"] if i.get("task")}
        scripts = tuple(s["path"] for s in spec["steps"] if s["kind"] == "script")
        return cls(key, conf, spec["inputs"], spec["outputs"], spec["steps"], upstream, dsl, dumps(spec), scripts)

    def __repr__(self):
        return f"<Task {self.key}>"


class TaskBuilder:
    """What dsl.task(key=...) returns; each clause returns the builder, () returns the Task."""
    __slots__ = ("_dsl", "key", "conf", "_inputs", "_outputs", "_steps", "_upstream", "_input_names", "_scripts",
                 "_inputs_json", "_outputs_json", "_steps_json")
    # _inputs: (name, type, text) of a literal value, (name, path, upstream key, None) of an
    # upstream's file, else the input's spec (Task.inputs); _steps: a bash snippet, or the spec;
    # _*_json: the JSON text of each input, output and step of the spec, as jsontext.dumps writes
    # it (Task.spec_json): the common cases formatted directly, the others dumped

    def __init__(self, dsl, key, conf):
        self._dsl = dsl
        if type(key) is not str or key.strip(_KEY_CHARS) or not key[:1].isalnum():
            check_key(key)  # (every reserved name has a dot: a key without one needs no closer look)
        self.key = key
        if conf is not None and not isinstance(conf, TaskConf):
            raise InvalidPipeline(f"task {key!r}: task_conf must be a TaskConf, got {type(conf).__name__}")
        self.conf = conf
        self._inputs = []
        self._input_names = set()
        self._outputs = {}
        self._steps = []
        self._upstream = set()
        self._scripts = None
        self._inputs_json = []
        self._outputs_json = []
        self._steps_json = []

    # -- inputs -------------------------------------------------------------------------
    def inputs(self, *args, **kwargs) -> "TaskBuilder":
        for a in args:
            if not isinstance(a, OutputRef):
                raise InvalidPipeline(f"task {self.key!r}: positional inputs must be upstream outputs "
                                      f"(t.outputs.x), got {a!r}; use name=value for literals")
            self._add_input(a.name, a)
        names = self._input_names
        for name, v in kwargs.items():
            # the most common cases first, inline (100k-task DAGs); _add_input does the rest
            t = type(v)
            if name in names or name not in _GOOD_NAMES:
                self._add_input(name, v)
            elif t is int:  # (a name in _GOOD_NAMES, an int's digits: nothing to escape)
                names.add(name)
                self._inputs.append((name, "int", str(v)))
                self._inputs_json.append(f'{{"name":"{name}","kind":"value","type":"int","value":"{v:d}"}}')
            elif t is str:
                names.add(name)
                self._inputs.append((name, "str", v))
                self._inputs_json.append(f'{{"name":"{name}","kind":"value","type":"str","value":{_quoted(v)}}}')
            elif t is OutputRef and v.decl["kind"] == "file":
                names.add(name)
                up = v.task.key
                self._upstream.add(up)
                path = f"output/{up}/{v.decl['path']}"
                self._inputs.append((name, path, up, None))
                self._inputs_json.append(f'{{"name":"{name}","kind":"file","path":{_quoted(path)},'
                                         f'"task":{_quoted(up)}}}')
            else:
                self._add_input(name, v)
        return self

    consumes = inputs

    def _add_input(self, name, v):
        key = self.key
        if name not in _GOOD_NAMES:
            _check_name(key, "input", name)
        names = self._input_names
        if name in names:
            raise InvalidPipeline(f"task {key!r}: input {name!r} is given twice")
        names.add(name)
        if type(v) is OutputRef and v.decl["kind"] == "file":  # the most common (positional inputs)
            up = v.task.key
            self._upstream.add(up)
            path = f"output/{up}/{v.decl['path']}"
            self._inputs.append((name, path, up, None))
            self._inputs_json.append(f'{{"name":"{name}","kind":"file","path":{_quoted(path)},"task":{_quoted(up)}}}')
            return
        if isinstance(v, Val):
            v = v.value
            if isinstance(v, OutputRef):
                v = self._dsl.resolve_val_ref(v)
        if isinstance(v, (bool, int, float, str)):  # the common case first (100k-task DAGs)
            spec = {"name": name, "kind": "value", "type": type_name(type(v)), "value": format_typed(v)}
        elif isinstance(v, OutputRef):
            decl, up = v.decl, v.task.key
            self._upstream.add(up)
            kind = decl["kind"]
            if kind == "var":
                spec = {"name": name, "kind": "var", "type": decl["type"], "task": up, "output": v.name}
            elif kind == "file":
                spec = {"name": name, "kind": "file", "path": f"output/{up}/{decl['path']}", "task": up}
            else:
                spec = {"name": name, "kind": "glob", "pattern": f"output/{up}/{decl['glob']}", "task": up}
        elif isinstance(v, FileHandle):
            spec = {"name": name, "kind": "file", "path": v.rel if v.rel is not None else v.path}
            if v.task_key:
                spec["task"] = v.task_key
                self._upstream.add(v.task_key)
        elif isinstance(v, File):
            spec = {"name": name, "kind": "file", "path": v.name}
        elif isinstance(v, GlobExpression):
            spec = {"name": name, "kind": "glob", "pattern": v.pattern}
        elif hasattr(v, "as_glob_expression"):
            spec = {"name": name, "kind": "glob", "pattern": v.as_glob_expression().pattern}
        else:
            raise InvalidPipeline(f"task {key!r}: input {name!r} has unsupported value {v!r} "
                                  "(int, float, str, bool, dsl.val, dsl.file, or an upstream output)")
        self._inputs.append(spec)
        self._inputs_json.append(dumps(spec))

    # -- outputs ------------------------------------------------------------------------
    def outputs(self, **kwargs) -> "TaskBuilder":
        key = self.key
        for name, v in kwargs.items():
            if name not in _GOOD_NAMES:
                _check_name(key, "output", name)
            if name in self._outputs or name in self._input_names:
                raise InvalidPipeline(f"task {key!r}: output {name!r} is declared twice")
            if type(v) is File and "/" not in v.name and v.name != "..":  # the common case first
                self._outputs[name] = {"kind": "file", "path": v.name}
                self._outputs_json.append(f'"{name}":{{"kind":"file","path":{_quoted(v.name)}}}')
                continue
            if isinstance(v, Var):
                v = v.type
            if isinstance(v, type):
                tn = type_name(v)
                if tn is None:
                    raise InvalidPipeline(f"task {key!r}: output {name!r} has type {v.__name__}; "
                                          "variables are int, float, str or bool")
                self._outputs[name] = {"kind": "var", "type": tn}
            elif isinstance(v, File):
                if v.name.startswith("/") or (".." in v.name and ".." in v.name.split("/")):
                    raise InvalidPipeline(f"task {key!r}: output file {v.name!r} must be relative "
                                          "to the task's output dir")
                self._outputs[name] = {"kind": "file", "path": v.name}
            elif isinstance(v, FileSet):
                self._outputs[name] = {"kind": "fileset", "glob": v.glob}
            else:
                raise InvalidPipeline(f"task {key!r}: output {name!r} must be a type (int, float, str), "
                                      f"dsl.var, dsl.file or dsl.fileset, got {v!r}")
            self._outputs_json.append(f'"{name}":{dumps(self._outputs[name])}')
        return self

    produces = outputs

    # -- steps --------------------------------------------------------------------------
    def calls(self, what) -> "TaskBuilder":
        key = self.key
        if isinstance(what, str):
            stripped = what.strip()
            if stripped.endswith(".sh") and "\n" not in stripped and " " not in stripped:
                self._steps.append({"kind": "script", "path": stripped})
                self._steps_json.append(dumps(self._steps[-1]))
                if self._scripts is None:
                    self._scripts = []
                self._scripts.append(stripped)
            else:
                self._steps.append(what)
                self._steps_json.append(f'{{"kind":"bash","snippet":{_quoted(what)}}}')
        elif callable(what):
            if not is_python_call(what):
                name = getattr(what, "__qualname__", repr(what))
                raise InvalidPipeline(f"task {key!r}: python call {name} is not decorated with "
                                      "@DryPipe.python_call()")
            self._steps.append({"kind": "python", "module": what.__module__, "function": what.__qualname__})
            self._steps_json.append(dumps(self._steps[-1]))
        else:
            raise InvalidPipeline(f"task {key!r}: calls() takes a bash snippet, a script name or a "
                                  f"@DryPipe.python_call() function, got {what!r}")
        return self

    def __call__(self) -> Task:
        if not self._steps_json:
            raise InvalidPipeline(f"task {self.key!r} has no .calls(...) step")
        dsl = self._dsl
        conf = self.conf or dsl.default_conf
        text = (f'{{"inputs":[{",".join(self._inputs_json)}],"outputs":{{{",".join(self._outputs_json)}}},'
                f'"steps":[{",".join(self._steps_json)}]}}')
        # (copies: a clause added to this builder later is not part of the task returned now)
        return Task(self.key, conf, self._inputs.copy(), self._outputs.copy(), self._steps.copy(),
                    self._upstream.copy(), dsl.root, text, tuple(self._scripts) if self._scripts else ())


# the types accepted by name in persisted specs, re-exported for the runtime
__all__ = ["Task", "TaskBuilder", "OutputRef", "check_key", "RESERVED_KEYS", "TYPES_BY_NAME"]
