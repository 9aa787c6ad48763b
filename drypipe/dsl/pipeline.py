"""Pipelines: DryPipe.create_pipeline, @DryPipe.python_call, and one run of a DAG generator."""
from __future__ import annotations

import importlib
import inspect
import os
import sys
import traceback

from ..conf import DEFAULT_TASK_CONF, TaskConf
from ..errors import DryPipeError, GeneratorFailed, InvalidPipeline
from .builder import DAGBuilder, SubPipeline
from .task import Task, TaskBuilder, mark_python_call

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Pipeline:
    def __init__(self, dag_gen, pipeline_code_dir=None, containers_dir=None, task_conf=None):
        if not callable(dag_gen):
            raise InvalidPipeline(f"create_pipeline: {dag_gen!r} is not a DAG generator function")
        if task_conf is not None and not isinstance(task_conf, TaskConf):
            raise InvalidPipeline("create_pipeline: task_conf must be a TaskConf")
        self.dag_gen = dag_gen
        if pipeline_code_dir is None:
            try:
                pipeline_code_dir = os.path.dirname(os.path.abspath(inspect.getsourcefile(dag_gen)))
            except TypeError:
                pipeline_code_dir = os.getcwd()
        self.pipeline_code_dir = os.path.abspath(pipeline_code_dir)
        self.containers_dir = os.path.abspath(containers_dir) if containers_dir else None
        self.task_conf = task_conf

    @property
    def default_conf(self) -> TaskConf:
        return self.task_conf or DEFAULT_TASK_CONF


class DryPipe:
    """The guide's entry points: DryPipe.create_pipeline and @DryPipe.python_call()."""

    @staticmethod
    def create_pipeline(dag_gen, pipeline_code_dir=None, containers_dir=None, task_conf=None) -> Pipeline:
        return Pipeline(dag_gen, pipeline_code_dir, containers_dir, task_conf)

    @staticmethod
    def python_call(*args, **kwargs):
        def decorate(f):
            return mark_python_call(f)
        if len(args) == 1 and callable(args[0]) and not kwargs:
            return decorate(args[0])
        return decorate


class Generation:
    """The result of one invocation of the DAG generator."""

    def __init__(self, tasks: dict[str, Task], blocked_waits):
        self.tasks = tasks
        self.blocked_waits = blocked_waits


def generate(pipeline: Pipeline, oracle, on_new=None) -> Generation:
    """Run the DAG generator once. on_new(task), if given, is called with each task the oracle
    does not know, as it is yielded (what it raises stops the generator): the orchestrator
    records a big DAG while the generator is still yielding it."""
    dsl = DAGBuilder(oracle, pipeline.default_conf)
    nodes = getattr(oracle, "nodes", None)  # (a TaskGraph: its dict, asked directly)
    known = nodes.__contains__ if isinstance(nodes, dict) else oracle.is_known

    generated, new_keys = dsl.generated, dsl.new_keys

    def drain(items):
        for item in items:
            if type(item) is not Task:
                if isinstance(item, TaskBuilder):
                    item = item()
                if isinstance(item, SubPipeline):
                    drain(item.iter_items())
                    continue
                if not isinstance(item, Task):
                    after = next(reversed(generated), None)
                    raise InvalidPipeline(f"the DAG generator yielded {item!r}; yield tasks or sub pipelines"
                                          + (f" (after task {after!r})" if after else ""))
            key = item.key
            prev = generated.get(key)
            if prev is not None:
                if prev is item:
                    continue
                raise InvalidPipeline(f"duplicate task key {key!r}")
            generated[key] = item
            if not known(key):
                new_keys.append(key)
                if on_new is not None:
                    on_new(item)

    try:
        items = pipeline.dag_gen(dsl)
        if items is None:
            raise InvalidPipeline(f"DAG generator {_name(pipeline.dag_gen)} returned None; "
                                  "it must yield tasks")
        drain(items)
    except DryPipeError as e:
        where = _user_location(e)
        raise type(e)(f"{e}{where}") from e
    except Exception as e:
        where = _user_location(e)
        last = next(reversed(generated), None)  # the key yielded last
        after = f", after task {last!r}" if last else ""
        raise GeneratorFailed(f"DAG generator {_name(pipeline.dag_gen)} raised "
                              f"{type(e).__name__}: {e}{where}{after}") from e
    return Generation(dsl.generated, dsl.blocked_waits)


def _name(f):
    return f"{getattr(f, '__module__', '?')}:{getattr(f, '__qualname__', f)}"


def _user_location(e: BaseException) -> str:
    frames = [f for f in traceback.extract_tb(e.__traceback__)
              if not f.filename.startswith("<") and
              not os.path.abspath(f.filename).startswith(_PACKAGE_DIR + os.sep)]
    if not frames:
        return ""
    f = frames[-1]
    return f" (at {f.filename}:{f.lineno})"


def import_spec(spec: str, option: str):
    """'module:name' (name may be dotted) -> that object, the module imported from the current
    directory or PYTHONPATH; a DryPipeError naming `option` and the culprit otherwise."""
    if not spec or ":" not in spec:
        raise DryPipeError(f"{option} {spec!r}: expected <module>:<function>")
    mod_name, fn_name = spec.split(":", 1)
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(mod_name)
    except ModuleNotFoundError as e:
        if e.name and (mod_name == e.name or mod_name.startswith(e.name + ".")):
            raise DryPipeError(f"{option} {spec!r}: module {mod_name!r} not found "
                               f"(looked in {cwd} and PYTHONPATH)") from e
        raise DryPipeError(f"{option} {spec!r}: importing {mod_name} failed: {e}") from e
    except Exception as e:
        raise DryPipeError(f"{option} {spec!r}: importing {mod_name} raised "
                           f"{type(e).__name__}: {e}{_user_location(e)}") from e
    fn = module
    for part in fn_name.split("."):
        fn = getattr(fn, part, None)
        if fn is None:
            raise DryPipeError(f"{option} {spec!r}: module {mod_name!r} has no function {fn_name!r}")
    return fn


def load_pipeline(spec: str) -> Pipeline:
    """'module:function' -> Pipeline; the function is a DAG generator or returns a Pipeline."""
    fn = import_spec(spec, "--generator")
    fn_name = spec.split(":", 1)[1]
    if isinstance(fn, Pipeline):
        return fn
    if not callable(fn):
        raise DryPipeError(f"--generator {spec!r}: {fn_name} is not a function")
    try:
        n_params = len(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        n_params = 1
    if n_params == 0:
        try:
            result = fn()
        except Exception as e:
            raise DryPipeError(f"--generator {spec!r}: {fn_name}() raised {type(e).__name__}: {e}"
                               f"{_user_location(e)}") from e
        if not isinstance(result, Pipeline):
            raise DryPipeError(f"--generator {spec!r}: {fn_name}() returned {type(result).__name__}, "
                               "expected DryPipe.create_pipeline(...)")
        return result
    return Pipeline(fn)
