"""A python call's `**kwargs`, and the expansion of TaskConf(extra_env=...) values
(decisions.md, Execution): end to end through the CLI, and the two functions on their own."""
import json
import os
import subprocess

import pytest

from conftest import REPO, drypipe
from drypipe import Instance
from drypipe.conf import TaskConf
from drypipe.runtime.pycall import bind_arguments
from drypipe.runtime.render import render_env

GEN = "tests.pipelines.pycall_env"


def run(inst, gen):
    return drypipe("run", "--pipeline-instance-dir", inst, "--generator", f"{GEN}:{gen}", cwd=REPO, check=True)


# -- **kwargs -------------------------------------------------------------------------------------

def test_kwargs_receive_every_unnamed_input_output_file_and_earlier_variable(instance_dir):
    run(instance_dir, "kwargs_dag")
    got = json.loads((instance_dir / "output" / "kw" / "kwargs.json").read_text())
    out_dir = str(instance_dir / "output" / "kw")
    assert got["named"] == {"n": ["int", 3], "out": ["str", os.path.join(out_dir, "kwargs.json")]}
    assert got["kwargs"] == {
        "s": ["str", "$text"],                                         # inputs, typed
        "fl": ["float", 1.5],
        "f": ["str", str(instance_dir / "output" / "up" / "uf.txt")],  # upstream file: its path
        "u": ["int", 7],                                               # upstream variable, typed
        "chunks": ["callable", [os.path.join(out_dir, "chunk.1.txt")]],  # fileset: as when named
        "tag": ["str", "from bash"],                                   # set by the earlier step
    }  # not: n and out (named), count (its own result), later (a later step), __ variables
    assert Instance(str(instance_dir)).outputs("kw")["count"] == 6


def _spec():
    return {
        "inputs": [{"name": "n", "kind": "value", "type": "int", "value": "3"},
                   {"name": "v", "kind": "var", "type": "float", "task": "up", "output": "v"},
                   {"name": "f", "kind": "file", "path": "in.txt"},
                   {"name": "g", "kind": "glob", "pattern": "/nowhere/*.txt"}],
        "outputs": {"o": {"kind": "file", "path": "o.txt"},
                    "x": {"kind": "var", "type": "int"},
                    "y": {"kind": "var", "type": "bool"}},
        "steps": [],
    }


ENV = {"n": "3", "v": "2.5", "f": "/i/in.txt", "g": "/nowhere/*.txt", "o": "/i/out/o.txt", "x": "41",
       "__task_key": "t", "__task_output_dir": "/i/out", "PATH": "/bin"}  # y: not set by any step


def test_bind_arguments_fills_kwargs_with_what_is_not_named():
    def f(n, o, **kwargs):
        pass

    kw = bind_arguments(f, _spec(), ENV)
    assert kw.keys() == {"n", "o", "v", "f", "g", "x"}
    assert (kw["n"], kw["o"], kw["v"], kw["f"], kw["x"]) == (3, "/i/out/o.txt", 2.5, "/i/in.txt", 41)
    assert type(kw["v"]) is float and type(kw["x"]) is int
    assert callable(kw["g"]) and kw["g"].pattern == "/nowhere/*.txt" and kw["g"]() == []


def test_bind_arguments_kwargs_get_drypipe_variables_only_when_named():
    def f(__task_key, **kwargs):
        pass

    kw = bind_arguments(f, _spec(), ENV)
    assert kw["__task_key"] == "t"
    assert not any(k.startswith("__") for k in kw if k != "__task_key")
    assert "PATH" not in kw and "y" not in kw


def test_bind_arguments_without_kwargs_is_unchanged():
    def f(n, x, y, unused=None):
        pass

    assert bind_arguments(f, _spec(), ENV) == {"n": 3, "x": 41, "y": None}


# -- extra_env ------------------------------------------------------------------------------------

def test_extra_env_is_expanded_like_shell_assignments_and_inputs_are_not(instance_dir):
    run(instance_dir, "extra_env_dag")
    lines = (instance_dir / "output" / "env" / "env.txt").read_text().splitlines()
    assert lines == [
        "z1",                                        # a
        "z1",                                        # b = $a
        f"{instance_dir}/z1",                        # c = $__pipeline_instance_dir/$b
        "dflt/z1",                                   # d = ${never_set_var:-dflt}/${a}
        "it's \"q\" $(echo sub) `echo tick` $a $1",  # e: no command substitution, \$ is a $
        f"{os.environ['HOME']}/x",                   # h = $HOME/x
        "$a $(echo no)",                             # input v: never expanded
    ]


def _env_after(env_text: str, names, preset: str = "") -> list[str]:
    """The values of names after bash evaluated env_text (as the task runner does)."""
    script = preset + 'eval "$1"\nfor n in ' + " ".join(names) + '; do printf "%s\\0" "${!n}"; done'
    proc = subprocess.run(["bash", "-c", script, "bash", env_text], capture_output=True, text=True,
                          env={"HOME": "/home/someone", "PATH": os.environ["PATH"]})
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    return proc.stdout.split("\0")[:-1]


def _render(extra_env, remote=False, inputs=()):
    spec = {"inputs": list(inputs), "outputs": {"o": {"kind": "file", "path": "o.txt"}}, "steps": []}
    return render_env("k", spec, TaskConf(extra_env=extra_env), "/inst", "/code", None, {}, [], remote=remote)


EXTRA_ENV = {  # as in tests/pipelines/pycall_env.py
    "a": "z1",
    "b": "$a",
    "c": "$__pipeline_instance_dir/$b",
    "d": "${never_set_var:-dflt}/${a}",
    "e": "it's \"q\" $(echo sub) `echo tick` \\$a $1",
    "h": "$HOME/x",
}


def test_render_env_expands_extra_env_in_order():
    env = _render({**EXTRA_ENV, "oo": "$o", "late": "$zz", "zz": "z"})
    assert _env_after(env, ["a", "b", "c", "d", "e", "h", "oo", "late", "zz"]) == [
        "z1", "z1", "/inst/z1", "dflt/z1", "it's \"q\" $(echo sub) `echo tick` $a $1", "/home/someone/x",
        "/inst/output/k/o.txt", "", "z"]


def test_render_env_remote_task_expands_on_the_remote_host():
    env = _render({"a": "z1", "c": "$__pipeline_instance_dir/$a"}, remote=True)
    assert _env_after(env, ["c"], preset="__pipeline_instance_dir=/remote/inst\n") == ["/remote/inst/z1"]


@pytest.mark.parametrize("value", [
    '"; touch PWNED; "', "'; touch PWNED; '", "$(touch PWNED)", "`touch PWNED`", "x\\", "${a", "${a:-}}",
    "${a:-'}", "${a:-$(touch PWNED)}", "a\n touch PWNED", "$((1+1))", "${a#$(touch PWNED)}", "${!a}", "~", "*",
])
def test_render_env_extra_env_value_cannot_break_out_of_its_assignment(tmp_path, value):
    """Whatever its value, an entry runs no command and leaves the next entry intact."""
    env = _render({"a": value, "nxt": "after"})
    proc = subprocess.run(["bash", "-c", 'eval "$1" && printf "%s" "$nxt"', "bash", env], cwd=tmp_path,
                          capture_output=True, text=True)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "after", "")
    assert list(tmp_path.iterdir()) == []


def test_render_env_inputs_are_never_expanded():
    env = _render({"a": "z1"}, inputs=[{"name": "v", "kind": "value", "type": "str", "value": "$a `x` $(y)"}])
    assert _env_after(env, ["v"]) == ["$a `x` $(y)"]
