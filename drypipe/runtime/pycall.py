"""Runs one python-call step of a task: `python -m drypipe.runtime.pycall TASK_DIR STEP`.

Arguments are bound by parameter name from the task's inputs (typed), its output files,
variables produced by earlier steps and DryPipe variables (__task_output_dir, ...). The
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


def bind_arguments(f, spec: dict, env) -> dict:
    inputs = {i["name"]: i for i in spec["inputs"]}
    outputs = spec["outputs"]
    kwargs = {}
    for name, p in inspect.signature(f).parameters.items():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if name in inputs:
            i = inputs[name]
            raw = env[name]
            if i["kind"] in ("value", "var"):
                try:
                    kwargs[name] = parse_typed(i["type"], raw)
                except ValueError as e:
                    raise StepError(f"input {name}={i['type']} given {raw!r}") from e
            elif i["kind"] == "glob":
                kwargs[name] = _glob_callable(raw)
            else:
                kwargs[name] = raw
        elif name in outputs:
            o = outputs[name]
            if o["kind"] == "var":
                raw = env.get(name)
                kwargs[name] = None if raw is None else parse_typed(o["type"], raw)
            elif o["kind"] == "fileset":
                kwargs[name] = _glob_callable(env[name])
            else:
                kwargs[name] = env[name]
        elif name.startswith("__") and name in env:
            kwargs[name] = env[name]
        elif p.default is p.empty:
            raise StepError(f"parameter {name!r} of {f.__qualname__} is not an input, output or "
                            "DryPipe variable of the task")
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
