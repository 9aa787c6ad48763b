"""Pipelines of tests/test_pycall_env.py: a python call taking `**kwargs`, and a task whose
TaskConf(extra_env=...) values refer to other variables."""
import json

from dry_pipe import DryPipe, TaskConf


def _describe(value):
    """[type name, value] of what a python call received (callables: their matches)."""
    if callable(value):
        return ["callable", value()]
    return [type(value).__name__, value]


@DryPipe.python_call()
def record_kwargs(n, out, **kwargs):
    """Writes what it received, by name, to `out`: the named parameters and **kwargs."""
    with open(out, "w") as f:
        json.dump({"named": {"n": _describe(n), "out": _describe(out)},
                   "kwargs": {k: _describe(v) for k, v in sorted(kwargs.items())}}, f)
    return {"count": len(kwargs)}


def kwargs_dag(dsl):
    up = dsl.task(key="up").outputs(u=int, uf=dsl.file("uf.txt")).calls(
        'echo hi > "$uf"; export u=7')()
    yield up
    yield dsl.task(key="kw").inputs(n=3, s="$text", fl=1.5, f=up.outputs.uf, u=up.outputs.u).outputs(
        out=dsl.file("kwargs.json"), chunks=dsl.fileset("chunk.*.txt"), tag=str, count=int, later=str).calls(
        'export tag="from bash"; echo 1 > chunk.1.txt').calls(record_kwargs).calls('export later=x')()


EXTRA_ENV = {
    "a": "z1",
    "b": "$a",
    "c": "$__pipeline_instance_dir/$b",
    "d": "${never_set_var:-dflt}/${a}",
    "e": "it's \"q\" $(echo sub) `echo tick` \\$a $1",
    "h": "$HOME/x",
}


def extra_env_dag(dsl):
    yield dsl.task(key="env", task_conf=TaskConf(extra_env=EXTRA_ENV)).inputs(v="$a $(echo no)").outputs(
        out=dsl.file("env.txt")).calls(
        'printf "%s\\n" "$a" "$b" "$c" "$d" "$e" "$h" "$v" > "$out"')()
