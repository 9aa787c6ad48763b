"""Pure renderers of a task's generated files: the `task` launcher and `task-env.sh`,
and the parser of the `output-vars` file that steps append to."""
from __future__ import annotations

import os
import re
import shlex
from functools import lru_cache

from ..conf import TaskConf
from ..jsontext import dumps

_HERE = os.path.dirname(os.path.abspath(__file__))


@lru_cache(maxsize=1)
def runner_body() -> str:
    with open(os.path.join(_HERE, "task_runner.sh")) as f:
        return f.read()


def q(value: str) -> str:
    """Quote for bash, byte for byte (single quotes; no expansion of any kind)."""
    return shlex.quote(value)


def in_instance(rel: str) -> str:
    """A bash word for a path relative to the instance dir (absolute paths stay as they are)."""
    if os.path.isabs(rel):
        return q(rel)
    return f'"$__pipeline_instance_dir"/{q(rel)}'


# -- extra_env: values written by the pipeline's author, expanded like shell assignments ------------
#
# Safety: a value is never pasted into the script as shell text. It is parsed here and rendered
# as a bash word built only of single-quoted literal text (shlex.quote, so nothing in it is
# live) and of parameter expansions whose names were checked to be identifiers. Whatever the
# value holds, the word is well formed and ends where the assignment ends: a value cannot end
# its quoting, start a command, or swallow the lines after it. What is live:
#   $NAME, ${NAME}                                   the variable (any variable of the task's
#                                                    environment: DryPipe variables, inputs,
#                                                    outputs, earlier extra_env entries, $HOME...)
#   ${NAME:-word} ${NAME-word} ${NAME:+word} ${NAME+word} ${NAME:=word} ${NAME=word}
#                                                    the shell's defaults; `word` is read with
#                                                    these same rules (nesting allowed), `\}`
#                                                    is a literal `}` in it
#   \$  \`  \"  \\                                   a literal $ ` " \ (as in "double quotes")
# Everything else is literal text, deliberately: command substitution ($(...), `...`),
# arithmetic ($((...))), special parameters ($1, $$, $?), other ${...} forms, a ${ without
# its }, quotes of either kind (so "it's set" stays it's set), ~ and glob characters.
# The word is the value of `export NAME=WORD`; bash does not split or glob the arguments of
# its declaration builtins, so an expansion needs no double quotes (simple ones get them
# anyway). Entries are rendered after the DryPipe variables, inputs and outputs, in the
# order of the dict: an entry sees those and the entries before it.

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DEFAULT_OPS = (":-", ":+", ":=", "-", "+", "=")
_ESCAPABLE = '$`"\\'


def _author_word(s: str, i: int, nested: bool):
    """Render s[i:] (up to the `}` ending a ${NAME<op>word} when nested) as a bash word.

    Returns (word, index after the text read), or None when nested and no `}` ends it."""
    parts: list[str] = []
    literal: list[str] = []

    def flush():
        if literal:
            parts.append(q("".join(literal)))
            literal.clear()

    n = len(s)
    while i < n:
        c = s[i]
        if c == "\\" and i + 1 < n and (s[i + 1] in _ESCAPABLE or (nested and s[i + 1] == "}")):
            literal.append(s[i + 1])
            i += 2
            continue
        if nested and c == "}":
            flush()
            return "".join(parts), i + 1
        if c == "$":
            expansion = _author_expansion(s, i)
            if expansion is not None:
                flush()
                parts.append(expansion[0])
                i = expansion[1]
                continue
        literal.append(c)
        i += 1
    if nested:
        return None
    flush()
    return "".join(parts), i


def _author_expansion(s: str, i: int):
    """The parameter expansion starting at s[i] == '$': (bash text, index after it), or None
    when it is not one of the supported forms (the `$` is then literal)."""
    m = _NAME_RE.match(s, i + 1)
    if m:
        return f'"${{{m.group()}}}"', m.end()
    if not s.startswith("{", i + 1):
        return None
    m = _NAME_RE.match(s, i + 2)
    if not m:
        return None
    name, j = m.group(), m.end()
    if s.startswith("}", j):
        return f'"${{{name}}}"', j + 1
    for op in _DEFAULT_OPS:
        if s.startswith(op, j):
            inner = _author_word(s, j + len(op), nested=True)
            if inner is None:
                return None
            word, k = inner
            return f"${{{name}{op}{word}}}", k
    return None


def author_value(value: str) -> str:
    """A bash word for an extra_env value: parameter expansions live, all else literal."""
    word, _ = _author_word(value, 0, nested=False)
    return word or "''"


REMOTE_CODE_DIR = '"$__pipeline_instance_dir"/.drypipe/_code'
REMOTE_PYTHON_DIR = '"$__pipeline_instance_dir"/.drypipe/_python'


def render_env(key: str, spec: dict, conf: TaskConf, instance_dir: str, code_dir: str,
               containers_dir: str | None, upstream_values: dict[str, str],
               python_path: list[str], remote: bool = False) -> str:
    """task-env.sh: the DryPipe variables, inputs, output files and extra_env of a task.

    Input and output values are single-quoted: never expanded. extra_env values are expanded
    like shell assignments when the task starts, on the host it runs on (see author_value).

    upstream_values maps input names of kind 'var' to their text values. For a task on a
    remote host, the code dir and DryPipe are the copies uploaded into the remote instance."""
    # a few `export` commands of many assignments rather than one per variable: every launcher
    # parses this file (bash parses a command for about what it costs to run it); a value that
    # names $__task_output_dir goes in the second, once that variable is set
    first = [f"__task_key={q(key)}",
             f'__task_output_dir="$__pipeline_instance_dir"/output/{q(key)}',
             f'__out_log="$__pipeline_instance_dir"/.drypipe/{q(key)}/out.log']
    second = ['__scratch_dir="${SLURM_TMPDIR:-$__task_output_dir/scratch}"']
    if remote:
        first += [f"__pipeline_code_dir={REMOTE_CODE_DIR}",
                  f"__containers_dir={q(conf.remote_containers_dir or '')}"]
        if python_path:
            first.append(f'PYTHONPATH={REMOTE_CODE_DIR}:{REMOTE_PYTHON_DIR}"${{PYTHONPATH:+:$PYTHONPATH}}"')
    else:
        first += [f"__pipeline_code_dir={q(code_dir)}", f"__containers_dir={q(containers_dir or '')}"]
        if python_path:
            pp = ":".join(python_path)
            first.append(f'PYTHONPATH={q(pp)}"${{PYTHONPATH:+:$PYTHONPATH}}"')
    for i in spec["inputs"]:
        name, kind = i["name"], i["kind"]
        if kind == "value":
            first.append(f"{name}={q(i['value'])}")
        elif kind == "var":
            first.append(f"{name}={q(upstream_values[name])}")
        elif kind == "file":
            first.append(f"{name}={in_instance(i['path'])}")
        else:  # glob: a pattern string, expanded by the user's snippet (or a callable in python)
            first.append(f"{name}={in_instance(i['pattern'])}")
    for name, o in spec["outputs"].items():
        if o["kind"] == "file":
            second.append(f'{name}="$__task_output_dir"/{q(o["path"])}')
        elif o["kind"] == "fileset":
            second.append(f'{name}="$__task_output_dir"/{q(o["glob"])}')
    lines = [
        f"# environment of DryPipe task {key}; sourced by ./task (source it to debug the task)",
        f"[[ -n ${{__pipeline_instance_dir:-}} ]] || __pipeline_instance_dir={q(instance_dir)}",
        " \\\n  ".join(["export __pipeline_instance_dir", *first]),
        " \\\n  ".join(["export", *second]),
    ]
    for k, v in conf.extra_env.items():  # (one per line: each may name the ones before)
        lines.append(f"export {k}={author_value(v)}")
    return "\n".join(lines) + "\n"


RUNTIME_REL = ".drypipe/_runtime/task-runner.sh"

_TASK_HEADER = """#!/usr/bin/env bash
# DryPipe task {key}: ./task [run [STEP]] | kill | tail | ps | env"""

# (after what a launcher its orchestrator watches reads: its spawner says where the task dir is)
_TASK_PROLOGUE = """__drypipe_s=${BASH_SOURCE[0]}
case $__drypipe_s in */*) __task_dir=${__drypipe_s%/*} ;; *) __task_dir=. ;; esac
if [[ $__task_dir != /* ]]; then  # (run as ./task: the absolute path)
  cd -- "$__task_dir" || { echo "drypipe: cannot enter task dir $__task_dir" >&2; exit 2; }
  __task_dir=$PWD
fi
__pipeline_instance_dir=${__task_dir%/.drypipe/*}
export __pipeline_instance_dir"""

_TASK_EPILOGUE = f"""[[ -n ${{__drypipe_runner_loaded:-}} ]] || . "$__pipeline_instance_dir"/{RUNTIME_REL} || exit 2
__drypipe_main "$@"
"""


# A step the launcher may run itself, in its own process (task_runner.sh, __drypipe_inline): one
# that cannot take over how the launcher ends, which words like these could do (its EXIT trap,
# the process itself, or code from elsewhere that might).
_NOT_INLINE_RE = re.compile(r"\b(trap|exec|eval|source)\b|(^|[\s;&|(){}])\.\s")


def runs_inline(snippet: str) -> bool:
    """May a task's last step, this bash snippet, run in the launcher rather than a subshell?"""
    return _NOT_INLINE_RE.search(snippet) is None


def render_runtime() -> str:
    """.drypipe/_runtime/task-runner.sh: the functions shared by all launchers of an instance."""
    return runner_body()


def render_task_script(key: str, spec: dict, python: str, env_text: str, conf_json: str,
                       container: str | None = None, drypipe_root: str | None = None) -> str:
    """The `task` launcher: locate the task dir, define its steps and checks, run the runtime.

    It carries its environment (task-env.sh) and configuration (task-conf.json) and writes
    them when it starts: one file for the orchestrator to write, and a self-contained task."""
    outputs = spec["outputs"]
    out_vars = [n for n, o in outputs.items() if o["kind"] == "var"]
    head = [
        _TASK_HEADER.format(key=key.replace("\n", " ")),
        f"__drypipe_python={q(python)}",
        f"__drypipe_n_steps={len(spec['steps'])}",
        f"__drypipe_output_vars={q(' '.join(out_vars))}",
    ]
    checks_in = [f"__drypipe_need_input {i['name']} || return 1"
                 for i in spec["inputs"] if i["kind"] == "file"]
    # (the runtime calls __drypipe_check_inputs only when __drypipe_input_checks is set: a call costs)
    head.append(f"__drypipe_input_checks={1 if checks_in else ''}")
    head.append("__drypipe_check_inputs() { " + " ; ".join(checks_in + ["return 0"]) + " ; }")
    checks_out = []
    for n, o in outputs.items():
        if o["kind"] == "var":
            checks_out.append(f"__drypipe_need_var {n} {o['type']} || return 1")
        elif o["kind"] == "file":
            path = f'"$__task_output_dir"/{q(o["path"])}'  # (the test inline: a call costs)
            checks_out.append(f'[[ -e {path} ]] || {{ __drypipe_need_file {n} {path}; return 1; }}')
    head.append("__drypipe_check_outputs() { " + " ; ".join(checks_out + ["return 0"]) + " ; }")
    if container:
        head.append(f"__drypipe_container={q(container)}")
        head.append(f"__drypipe_root={q(drypipe_root or '')}")
    steps = spec["steps"]
    inline = steps and not container and steps[-1]["kind"] == "bash" and runs_inline(steps[-1]["snippet"])
    if inline:
        head.append(f"__drypipe_inline_step={len(steps) - 1}")  # run by the launcher itself
    late = []  # what a watched launcher does not read (it runs before): the inline step's subshell
    for n, step in enumerate(steps):
        kind = step["kind"]
        # __drypipe_body_N runs the step (and captures its variables); __drypipe_step_N is what
        # the runner calls: the body itself, or the body run inside the task's container.
        subshell = late if inline and n == len(steps) - 1 else head
        if kind == "python":
            head.append(f'__drypipe_body_{n}() {{ "$__drypipe_python" -m drypipe.runtime.pycall '
                        f'"$__task_dir" {n}; }}')
        else:
            body = step["snippet"] if kind == "bash" else f'. "$__pipeline_code_dir"/{q(step["path"])}'
            head.append(f"__drypipe_user_step_{n}() {{\n{body}\n}}")
            subshell.append(f"__drypipe_body_{n}() ( set -eo pipefail; trap '__drypipe_capture $?' EXIT; "
                            f"__drypipe_user_step_{n} )")
        if container:
            head.append(f"__drypipe_step_{n}() {{ __drypipe_in_container {n}; }}")
        else:
            subshell.append(f"__drypipe_step_{n}() {{ __drypipe_body_{n}; }}")
    # a launcher its orchestrator watches runs from here (task_runner.sh: __drypipe_watched_run):
    # its spawner set __drypipe_tdir, the task dir; none of the text below is parsed
    head.append('[[ -n ${__drypipe_tdir:-} && -n ${__drypipe_runner_loaded:-} ]] && __drypipe_watched_run "$@"')
    head.append(_TASK_PROLOGUE)
    head += late
    head.append(f"__drypipe_env={q(env_text)}")
    head.append(f"__drypipe_conf={q(conf_json)}")
    head.append(_TASK_EPILOGUE)
    return "\n".join(head)


def render_task_conf(key: str, spec: dict, conf: TaskConf) -> str:
    """task-conf.json: the task's key, TaskConf and spec (read by python steps)."""
    return f'{{"key":{dumps(key)},"conf":{conf.to_json_key()},"spec":{dumps(spec)}}}\n'


def parse_output_vars(data: bytes) -> dict[str, str]:
    """The `output-vars` file: NUL-separated name/value pairs; a later pair wins."""
    parts = data.split(b"\0")
    out = {}
    for i in range(0, len(parts) - 1, 2):
        out[parts[i].decode("utf-8", "surrogateescape")] = parts[i + 1].decode("utf-8", "surrogateescape")
    return out
