"""Small DAG generators for tests/test_commands.py and tests/test_api.py.

Steps record each execution by appending a line to $__pipeline_instance_dir/executions.txt,
and a step that must fail "the first time" fails until the test creates a marker file in the
instance dir (no timing involved)."""
import os

from dry_pipe import DryPipe

# A line "<task key> step<N>" per execution of a step.
LOG = '"$__pipeline_instance_dir/executions.txt"'


@DryPipe.python_call()
def last_step(a, b, result, __task_key, __pipeline_instance_dir):
    """Step 2 of a `_three` task: needs `a` (set by step 0) and `b` (set by step 1)."""
    with open(os.path.join(__pipeline_instance_dir, "executions.txt"), "a") as f:
        f.write(f"{__task_key} step2\n")
    with open(result, "w") as f:
        f.write(f"a={a} b={b}\n")
    return {"c": f"a={a} b={b}"}


def _three(dsl, key, marker="pass-step-1"):
    """3 steps: step 0 (bash) sets a=7; step 1 (bash) fails, leaving a stale file behind, until
    the marker file exists, else sets b=a+1; step 2 (python) sets c from a and b and writes
    result.txt."""
    return dsl.task(key=key).outputs(a=int, b=int, c=str, result=dsl.file("result.txt")).calls(f"""
        echo "$__task_key step0" >> {LOG}
        export a=7
    """).calls(f"""
        echo "$__task_key step1" >> {LOG}
        if [[ ! -e "$__pipeline_instance_dir/{marker}" ]]; then
            echo "stale from the failed attempt" > stale.txt
            echo "step 1 sees no marker"
            exit 3
        fi
        export b=$(( a + 1 ))
    """).calls(last_step)()


def three(dsl):
    """One 3-step task `t`, see _three."""
    yield _three(dsl, "t")


def fails_with_downstream(dsl):
    """`up` fails until the marker exists; `down` consumes its output; `ok` is independent."""
    yield dsl.task(key="ok").outputs(x=int).calls("export x=1")()
    up = _three(dsl, "up")
    yield up
    yield dsl.task(key="down").inputs(c=up.outputs.c).outputs(d=str).calls('export d="got $c"')()


def several_fail(dsl):
    """fail-0, fail-1 fail until the marker exists; good-0, good-1 complete."""
    for i in range(2):
        yield dsl.task(key=f"good-{i}").inputs(i=i).outputs(sq=int).calls(
            f'echo "$__task_key step0" >> {LOG}; export sq=$(( i * i ))')()
    for i in range(2):
        yield _three(dsl, f"fail-{i}")


def typed(dsl):
    """A task with typed inputs and outputs of every kind, for `call`, `dump-env` and outputs()."""
    src = dsl.task(key="src").outputs(n=int, ratio=float, flag=bool, f=dsl.file("data.txt")).calls(
        'export n=42 ratio=2.5 flag=true; printf "line1\\nline2\\n" > "$f"')()
    yield src
    yield dsl.task(key="use").inputs(n=src.outputs.n, ratio=src.outputs.ratio, f=src.outputs.f,
                                     label="it's a label", k=3).outputs(total=float).calls(
        'export total=$(( n * k ))')()


def describe_inputs(n, ratio, f, label, k, __task_key):
    """Called by `drypipe call`: reports the types and values it received."""
    return {"n": (type(n).__name__, n), "ratio": (type(ratio).__name__, ratio),
            "label": (type(label).__name__, label), "k": (type(k).__name__, k),
            "f_content": open(f).read().split(), "key": __task_key}


def _blocker(dsl):
    return dsl.task(key="blocker").outputs(n_runs=int).calls(f"""
        echo "$__task_key step0" >> {LOG}
        while [[ ! -e "$__pipeline_instance_dir/release" ]]; do sleep 0.02; done
        export n_runs=$(grep -c '^blocker ' {LOG})
    """)()


def blocking(dsl):
    """`blocker` runs until the test creates the file `release` in the instance dir (its output
    n_runs counts its executions); `quick` ends at once. A run that lasts exactly as long as the
    test wants, for status, lock and detached-restart tests."""
    yield _blocker(dsl)
    yield dsl.task(key="quick").calls("true")()


def blocking_with_failure(dsl):
    """`blocking`, plus `broken`, which fails at once."""
    yield from blocking(dsl)
    yield dsl.task(key="broken").calls('echo "broken is broken"; exit 5')()


def chatty(dsl):
    """A task printing known lines to its out.log, then a downstream task."""
    t = dsl.task(key="chatty").outputs(n=int).calls("""
        for i in 1 2 3; do echo "chatty line $i"; done
        export n=3
    """).calls("""
        echo "chatty step 1 done"
    """)()
    yield t
    yield dsl.task(key="after-chatty").inputs(n=t.outputs.n).calls('echo "n=$n"')()


def timed(dsl):
    """Groups of tasks with measurable steps: align-0..2 (2 steps), sort-0..1 (1 step), merge."""
    for i in range(3):
        yield dsl.task(key=f"align-{i}").calls("sleep 0.1").calls("sleep 0.2")()
    for i in range(2):
        yield dsl.task(key=f"sort-{i}").calls("sleep 0.1")()
    yield dsl.task(key="merge").calls("true")()


def raises_dp_error(dsl):
    """A generator yielding a task with an invalid key: a DryPipeError (InvalidPipeline)."""
    yield dsl.task(key="a/b").calls("true")()
