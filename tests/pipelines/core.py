"""DAG generators for tests/test_core.py (the state machine's defects, through the CLI).

Steps append `<key> step<N>` to $__pipeline_instance_dir/executions.txt; tasks that must wait
for the test wait on marker files in the instance dir (no timing involved)."""
import os
import time

from dry_pipe import DryPipe, TaskConf

LOG = '"$__pipeline_instance_dir/executions.txt"'


def _marker(name):
    return f'"$__pipeline_instance_dir/{name}"'


def wait_for(name):
    """bash: block until the test creates the marker file `name` in the instance dir."""
    return f"while [[ ! -e {_marker(name)} ]]; do sleep 0.05; done"


def generator_raises_later(dsl):
    """`first` completes at once; `long` runs until the marker `finish-long` exists. The
    generator raises when it is called again after `first` completed."""
    first = dsl.task(key="first").outputs(x=int).calls(f'echo "first step0" >> {LOG}; export x=1')()
    yield first
    yield dsl.task(key="long").calls(f"""
        echo "long step0" >> {LOG}
        {wait_for("finish-long")}
        echo done > long.txt
    """)()
    for _ in dsl.wait_for_tasks(first):
        raise RuntimeError("the generator broke on its second call")


def moves_to_slurm(dsl):
    """`t` fails while the marker `fixed` is absent; once it exists the generator gives `t` a
    Slurm TaskConf."""
    fixed = os.path.exists(dsl.file_in_pipeline_instance_dir("fixed"))
    conf = TaskConf(executer_type="slurm") if fixed else None
    yield dsl.task(key="t", task_conf=conf).calls(f"""
        echo "t step0" >> {LOG}
        [[ -e {_marker("fixed")} ]] || exit 4
    """)()


def held(dsl):
    """`a` and `b` run; `c-held` is meant to be held back with --until 'c-*'."""
    yield dsl.task(key="a").calls(f'echo "a step0" >> {LOG}')()
    yield dsl.task(key="b").calls(f'echo "b step0" >> {LOG}')()
    yield dsl.task(key="c-held").calls(f'echo "c-held step0" >> {LOG}')()


@DryPipe.python_call()
def one_second(__task_key, __pipeline_instance_dir):
    with open(os.path.join(__pipeline_instance_dir, "executions.txt"), "a") as f:
        f.write(f"{__task_key} python\n")
    time.sleep(1)


def timed(dsl):
    """`sleeper` sleeps 3 s in bash; `two-py` has two python steps of 1 s each."""
    yield dsl.task(key="sleeper").calls("sleep 3")()
    yield dsl.task(key="two-py").calls(one_second).calls(one_second)()


def ends_unseen(dsl):
    """`unseen` waits for the marker `go`, prints a message, then fails (exit 3) or, when the
    marker `succeed` exists, completes."""
    yield dsl.task(key="unseen").outputs(v=int).calls(f"""
        echo "unseen step0" >> {LOG}
        {wait_for("go")}
        echo "about to end"
        [[ -e {_marker("succeed")} ]] || exit 3
        export v=5
    """)()


def up_down(dsl):
    """`up` (waits for the marker `release-up` when `hold-up` exists) -> `down` (records its
    start time and the time `up` last completed)."""
    up = dsl.task(key="up").outputs(x=int).calls(f"""
        echo "up step0" >> {LOG}
        if [[ -e {_marker("hold-up")} ]]; then {wait_for("release-up")}; fi
        export x=$EPOCHREALTIME
        x=${{x%.*}}
    """)()
    yield up
    yield dsl.task(key="down").inputs(x=up.outputs.x).calls(f'echo "down step0" >> {LOG}')()


def chain3(dsl):
    """a -> b -> c, each recording its execution."""
    a = dsl.task(key="a").outputs(v=int).calls(f'echo "a step0" >> {LOG}; export v=1')()
    yield a
    b = dsl.task(key="b").inputs(v=a.outputs.v).outputs(w=int).calls(f'echo "b step0" >> {LOG}; export w=$((v+1))')()
    yield b
    yield dsl.task(key="c").inputs(w=b.outputs.w).calls(f'echo "c step0" >> {LOG}')()


def marked_chain(dsl):
    """a -> b; a step fails while the marker `fail-<key>` exists in the instance dir."""
    step = ('echo "$__task_key step0" >> {log}\n'
            '[[ ! -e "$__pipeline_instance_dir/fail-$__task_key" ]] || exit 9\n').format(log=LOG)
    a = dsl.task(key="a").outputs(v=int).calls(step + "export v=1\n")()
    yield a
    yield dsl.task(key="b").inputs(v=a.outputs.v).calls(step)()
