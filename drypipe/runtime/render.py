"""Pure renderers of a task's generated files: the `task` launcher and `task-env.sh`,
and the parser of the `output-vars` file that steps append to."""
from __future__ import annotations

import json
import os
import shlex
from functools import lru_cache

from ..conf import TaskConf

_HERE = os.path.dirname(os.path.abspath(__file__))


@lru_cache(maxsize=1)
def runner_body() -> str:
    with open(os.path.join(_HERE, "task_runner.sh")) as f:
        return f.read()


def builtins_path() -> str | None:
    p = os.path.join(_HERE, "bash_builtins.so")
    return p if os.path.exists(p) else None


def q(value: str) -> str:
    """Quote for bash, byte for byte (single quotes; no expansion of any kind)."""
    return shlex.quote(value)


def in_instance(rel: str) -> str:
    """A bash word for a path relative to the instance dir (absolute paths stay as they are)."""
    if os.path.isabs(rel):
        return q(rel)
    return f'"$__pipeline_instance_dir"/{q(rel)}'


REMOTE_CODE_DIR = '"$__pipeline_instance_dir"/.drypipe/_code'
REMOTE_PYTHON_DIR = '"$__pipeline_instance_dir"/.drypipe/_python'


def render_env(key: str, spec: dict, conf: TaskConf, instance_dir: str, code_dir: str,
               containers_dir: str | None, upstream_values: dict[str, str],
               python_path: list[str], remote: bool = False) -> str:
    """task-env.sh: the DryPipe variables, inputs, output files and extra_env of a task.

    upstream_values maps input names of kind 'var' to their text values. For a task on a
    remote host, the code dir and DryPipe are the copies uploaded into the remote instance."""
    lines = [
        f"# environment of DryPipe task {key}; sourced by ./task (source it to debug the task)",
        f"[[ -n ${{__pipeline_instance_dir:-}} ]] || __pipeline_instance_dir={q(instance_dir)}",
        "export __pipeline_instance_dir",
        f"export __task_key={q(key)}",
        f'export __task_output_dir="$__pipeline_instance_dir"/output/{q(key)}',
        f'export __out_log="$__pipeline_instance_dir"/.drypipe/{q(key)}/out.log',
        'export __scratch_dir="${SLURM_TMPDIR:-$__task_output_dir/scratch}"',
    ]
    if remote:
        lines += [f"export __pipeline_code_dir={REMOTE_CODE_DIR}",
                  f"export __containers_dir={q(conf.remote_containers_dir or '')}"]
        if python_path:
            lines.append(f'export PYTHONPATH={REMOTE_CODE_DIR}:{REMOTE_PYTHON_DIR}"${{PYTHONPATH:+:$PYTHONPATH}}"')
    else:
        lines += [f"export __pipeline_code_dir={q(code_dir)}", f"export __containers_dir={q(containers_dir or '')}"]
        if python_path:
            pp = ":".join(python_path)
            lines.append(f'export PYTHONPATH={q(pp)}"${{PYTHONPATH:+:$PYTHONPATH}}"')
    for i in spec["inputs"]:
        name, kind = i["name"], i["kind"]
        if kind == "value":
            lines.append(f"export {name}={q(i['value'])}")
        elif kind == "var":
            lines.append(f"export {name}={q(upstream_values[name])}")
        elif kind == "file":
            lines.append(f"export {name}={in_instance(i['path'])}")
        else:  # glob: a pattern string, expanded by the user's snippet (or a callable in python)
            lines.append(f"export {name}={in_instance(i['pattern'])}")
    for name, o in spec["outputs"].items():
        if o["kind"] == "file":
            lines.append(f'export {name}="$__task_output_dir"/{q(o["path"])}')
        elif o["kind"] == "fileset":
            lines.append(f'export {name}="$__task_output_dir"/{q(o["glob"])}')
    for k, v in conf.extra_env.items():
        lines.append(f"export {k}={q(v)}")
    return "\n".join(lines) + "\n"


RUNTIME_REL = ".drypipe/_runtime/task-runner.sh"

_TASK_PROLOGUE = """#!/usr/bin/env bash
# DryPipe task {key}: ./task [run [STEP]] | kill | tail | ps | env
__drypipe_s=${{BASH_SOURCE[0]}}
case $__drypipe_s in */*) __task_dir=${{__drypipe_s%/*}} ;; *) __task_dir=. ;; esac
cd -- "$__task_dir" || {{ echo "drypipe: cannot enter task dir $__task_dir" >&2; exit 2; }}
__task_dir=$PWD
__pipeline_instance_dir=${{__task_dir%/.drypipe/*}}
export __pipeline_instance_dir"""

_TASK_EPILOGUE = f"""[[ -n ${{__drypipe_runner_loaded:-}} ]] || . "$__pipeline_instance_dir"/{RUNTIME_REL} || exit 2
__drypipe_main "$@"
"""


def render_runtime(builtins: str | None) -> str:
    """.drypipe/_runtime/task-runner.sh: the functions shared by all launchers of an instance."""
    return f"__drypipe_builtins={q(builtins or '')}\n" + runner_body()


def render_task_script(key: str, spec: dict, python: str, env_text: str, conf_json: str,
                       container: str | None = None, drypipe_root: str | None = None) -> str:
    """The `task` launcher: locate the task dir, define its steps and checks, run the runtime.

    It carries its environment (task-env.sh) and configuration (task-conf.json) and writes
    them when it starts: one file for the orchestrator to write, and a self-contained task."""
    outputs = spec["outputs"]
    out_vars = [n for n, o in outputs.items() if o["kind"] == "var"]
    head = [
        _TASK_PROLOGUE.format(key=key.replace("\n", " ")),
        f"__drypipe_python={q(python)}",
        f"__drypipe_n_steps={len(spec['steps'])}",
        f"__drypipe_output_vars={q(' '.join(out_vars))}",
    ]
    checks_in = [f"__drypipe_need_input {i['name']} || return 1"
                 for i in spec["inputs"] if i["kind"] == "file"]
    head.append("__drypipe_check_inputs() { " + " ; ".join(checks_in + ["return 0"]) + " ; }")
    checks_out = []
    for n, o in outputs.items():
        if o["kind"] == "var":
            checks_out.append(f"__drypipe_need_var {n} {o['type']} || return 1")
        elif o["kind"] == "file":
            checks_out.append(f"__drypipe_need_file {n} || return 1")
    head.append("__drypipe_check_outputs() { " + " ; ".join(checks_out + ["return 0"]) + " ; }")
    if container:
        head.append(f"__drypipe_container={q(container)}")
        head.append(f"__drypipe_root={q(drypipe_root or '')}")
    for n, step in enumerate(spec["steps"]):
        kind = step["kind"]
        # __drypipe_body_N runs the step (and captures its variables); __drypipe_step_N is what
        # the runner calls: the body itself, or the body run inside the task's container.
        if kind == "python":
            head.append(f'__drypipe_body_{n}() {{ "$__drypipe_python" -m drypipe.runtime.pycall '
                        f'"$__task_dir" {n}; }}')
        else:
            body = step["snippet"] if kind == "bash" else f'. "$__pipeline_code_dir"/{q(step["path"])}'
            head.append(f"__drypipe_user_step_{n}() {{\n{body}\n}}")
            head.append(f"__drypipe_body_{n}() ( set -eo pipefail; trap '__drypipe_capture $?' EXIT; "
                        f"__drypipe_user_step_{n} )")
        if container:
            head.append(f"__drypipe_step_{n}() {{ __drypipe_in_container {n}; }}")
        else:
            head.append(f"__drypipe_step_{n}() {{ __drypipe_body_{n}; }}")
    head.append(f"__drypipe_env={q(env_text)}")
    head.append(f"__drypipe_conf={q(conf_json)}")
    head.append(_TASK_EPILOGUE)
    return "\n".join(head)


_ENCODE = json.JSONEncoder(separators=(",", ":")).encode


def render_task_conf(key: str, spec: dict, conf: TaskConf) -> str:
    """task-conf.json: the task's key, TaskConf and spec (read by python steps)."""
    return f'{{"key":{_ENCODE(key)},"conf":{conf.to_json_key()},"spec":{_ENCODE(spec)}}}\n'


def parse_output_vars(data: bytes) -> dict[str, str]:
    """The `output-vars` file: NUL-separated name/value pairs; a later pair wins."""
    parts = data.split(b"\0")
    out = {}
    for i in range(0, len(parts) - 1, 2):
        out[parts[i].decode("utf-8", "surrogateescape")] = parts[i + 1].decode("utf-8", "surrogateescape")
    return out
