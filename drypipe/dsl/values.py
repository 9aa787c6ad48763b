"""Values that appear in .inputs(...) and .outputs(...) clauses."""
from __future__ import annotations

import os

TYPE_NAMES = {int: "int", float: "float", str: "str", bool: "bool"}
TYPES_BY_NAME = {v: k for k, v in TYPE_NAMES.items()}


def type_name(t) -> str | None:
    return TYPE_NAMES.get(t)


def parse_typed(type_name_: str, raw: str):
    """Convert the text form of a variable to its declared type (raises ValueError)."""
    if type_name_ == "str":
        return raw
    if type_name_ == "int":
        return int(raw)
    if type_name_ == "float":
        return float(raw)
    if type_name_ == "bool":
        low = raw.strip().lower()
        if low in ("true", "1", "yes"):
            return True
        if low in ("false", "0", "no", ""):
            return False
        raise ValueError(f"invalid bool {raw!r}")
    raise ValueError(f"unknown type {type_name_}")


def format_typed(value) -> str:
    """The text form of a variable value, as a task sees it in its environment."""
    if isinstance(value, float):
        return repr(value)
    return str(value)


class Val:
    """dsl.val(v): a literal input value."""
    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value


class Var:
    """dsl.var(type): an output variable declaration."""
    __slots__ = ("type",)

    def __init__(self, type_=str):
        self.type = type_


class File:
    """dsl.file(name): in outputs, relative to the task's output dir; in inputs, to the instance dir."""
    __slots__ = ("name",)

    def __init__(self, name):
        self.name = os.fspath(name)


class FileSet:
    """dsl.fileset(glob): a set of files matching a glob relative to the task's output dir."""
    __slots__ = ("glob",)

    def __init__(self, glob):
        self.glob = glob


class FileHandle:
    """A file produced by a task: from a fileset's .fetch() or a file output's .fetch()."""
    __slots__ = ("path", "rel", "task_key")

    def __init__(self, path: str, rel: str | None, task_key: str | None):
        self.path = path
        self.rel = rel
        self.task_key = task_key

    def basename(self) -> str:
        return os.path.basename(self.path)

    def __fspath__(self):
        return self.path

    def __str__(self):
        return self.path

    def __repr__(self):
        return f"FileHandle({self.path!r})"

    def __eq__(self, other):
        return isinstance(other, FileHandle) and other.path == self.path

    def __hash__(self):
        return hash(self.path)


class GlobExpression:
    """A glob over files of several tasks, relative to the instance dir (from a matcher)."""
    __slots__ = ("pattern", "instance_dir")

    def __init__(self, pattern: str, instance_dir: str):
        self.pattern = pattern
        self.instance_dir = instance_dir

    def __str__(self):
        return os.path.join(self.instance_dir, self.pattern)

    def __repr__(self):
        return f"GlobExpression({str(self)!r})"
