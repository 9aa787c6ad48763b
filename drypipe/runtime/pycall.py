"""Runs one python-call step of a task: `python -m drypipe.runtime.pycall TASK_DIR STEP`.

Arguments are bound by parameter name from the task's inputs (typed), its output files,
variables produced by earlier steps and DryPipe variables (__task_output_dir, ...); a
`**kwargs` parameter receives the inputs, output files and variables not named. The
returned dict of output variables is appended to the task's `output-vars` file.
Imports nothing heavy: this runs once per python step.
"""
from __future__ import annotations

import glob
import importlib
import inspect
import json
import os
import sys
import traceback

from ..dsl.values import format_typed, parse_typed


class StepError(Exception):
    pass


def _load_function(step):
    code_dir = os.environ.get("__pipeline_code_dir")
    if code_dir and code_dir not in sys.path:
        sys.path.insert(0, code_dir)
    try:
        module = importlib.import_module(step["module"])
    except Exception as e:
        raise StepError(f"cannot import module {step['module']!r}: {type(e).__name__}: {e}") from e
    f = module
    for part in step["function"].split("."):
        f = getattr(f, part, None)
        if f is None:
            raise StepError(f"module {step['module']!r} has no function {step['function']!r}")
    return f


def _glob_callable(pattern):
    def matches():
        return sorted(glob.glob(pattern))
    matches.pattern = pattern
    return matches


def _input_value(i: dict, raw: str):
    """An input as a python call receives it: typed value, file path or glob callable."""
    if i["kind"] in ("value", "var"):
        try:
            return parse_typed(i["type"], raw)
        except ValueError as e:
            raise StepError(f"input {i['name']}={i['type']} given {raw!r}") from e
    if i["kind"] == "glob":
        return _glob_callable(raw)
    return raw


def _output_value(o: dict, raw: str | None):
    """An output as a python call receives it: the typed value of a variable set by an earlier
    step (None if none did), the path of a file, a glob callable for a fileset."""
    if o["kind"] == "var":
        return None if raw is None else parse_typed(o["type"], raw)
    if o["kind"] == "fileset":
        return _glob_callable(raw)
    return raw


def bind_arguments(f, spec: dict, env) -> dict:
    """The keyword arguments of f: its named parameters bound by name, and, when f has
    `**kwargs`, every input, output file and earlier-step variable not bound to a named
    parameter (as in the original dry-pipe). DryPipe `__` variables go to named parameters only."""
    inputs = {i["name"]: i for i in spec["inputs"]}
    outputs = spec["outputs"]
    kwargs = {}
    var_keyword = False
    for name, p in inspect.signature(f).parameters.items():
        if p.kind == p.VAR_KEYWORD:
            var_keyword = True
            continue
        if p.kind == p.VAR_POSITIONAL:
            continue
        if name in inputs:
            kwargs[name] = _input_value(inputs[name], env[name])
        elif name in outputs:
            o = outputs[name]
            kwargs[name] = _output_value(o, env.get(name) if o["kind"] == "var" else env[name])
        elif name.startswith("__") and name in env:
            kwargs[name] = env[name]
        elif p.default is p.empty:
            raise StepError(f"parameter {name!r} of {f.__qualname__} is not an input, output or "
                            "DryPipe variable of the task")
    if var_keyword:
        for name, i in inputs.items():
            if name not in kwargs:
                kwargs[name] = _input_value(i, env[name])
        for name, o in outputs.items():
            if name in kwargs:
                continue
            if o["kind"] == "var":
                if name in env:  # only variables earlier steps produced
                    kwargs[name] = _output_value(o, env[name])
            else:
                kwargs[name] = _output_value(o, env[name])
    return kwargs


def encode_outputs(result, spec: dict, func_name: str) -> bytes:
    if result is None:
        return b""
    if not isinstance(result, dict):
        raise StepError(f"{func_name} returned {type(result).__name__}; python calls return None "
                        "or a dict of output variables")
    declared = {n: o for n, o in spec["outputs"].items() if o["kind"] == "var"}
    chunks = []
    for name, value in result.items():
        if name not in declared:
            raise StepError(f"{func_name} returned undeclared variable {name!r} "
                            f"(declared: {', '.join(declared) or 'none'})")
        text = format_typed(value)
        try:
            parse_typed(declared[name]["type"], text)
        except ValueError as e:
            raise StepError(f"output variable {name}={declared[name]['type']} given {text!r}") from e
        chunks.append(name.encode() + b"\0" + text.encode("utf-8", "surrogateescape") + b"\0")
    return b"".join(chunks)


def _report(task_dir: str, key: str, step_no: int, e: Exception) -> int:
    """The message goes to out.log and to step-error, which the launcher puts in drypipe.log
    (and so in the run's summary)."""
    msg = f"step {step_no}: {e}"
    print(f"drypipe: task {key} {msg}", file=sys.stderr)
    with open(os.path.join(task_dir, "step-error"), "w") as fh:
        fh.write(msg)
    return 1


def main(argv) -> int:
    task_dir, step_no = argv[0], int(argv[1])
    with open(os.path.join(task_dir, "task-conf.json")) as fh:
        conf = json.load(fh)
    spec = conf["spec"]
    step = spec["steps"][step_no]
    name = f"{step['module']}.{step['function']}"
    try:
        f = _load_function(step)
        kwargs = bind_arguments(f, spec, os.environ)
    except StepError as e:
        return _report(task_dir, conf["key"], step_no, e)
    try:
        result = f(**kwargs)
    except Exception:
        traceback.print_exc()
        return 1
    finally:
        sys.stdout.flush()
    try:
        data = encode_outputs(result, spec, name)
    except StepError as e:
        return _report(task_dir, conf["key"], step_no, e)
    if data:
        with open(os.path.join(task_dir, "output-vars"), "ab") as fh:
            fh.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
