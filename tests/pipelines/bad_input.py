"""DAG generators with one mistake each, for tests/test_bad_input.py (the CLI runs them in a
subprocess, so they take their parameters from the environment).

FIX=1 in the environment corrects the mistake of a generator: the test then checks that a
correct run works on the instance the broken one left. Task-level mistakes (a task breaking
its declared outputs) are corrected at run time instead, by a file `fixed` in the instance
dir: a failed task's definition is the one stored when it was first generated, so
`drypipe run --restart-failed` reruns it as it was, and the file makes it behave.
"""
import os

from dry_pipe import DryPipe


def _fixed():
    return os.environ.get("FIX") == "1"


def _fixed_at_run_time():
    return os.path.exists(os.path.join(os.environ["__pipeline_instance_dir"], "fixed"))


# bash: true once the instance has a file `fixed`
FIXED = '[[ -e $__pipeline_instance_dir/fixed ]]'


def good(dsl):
    """A correct two-task pipeline."""
    a = dsl.task(key="a").outputs(x=int, f=dsl.file("a.txt")).calls("echo a > $f\nexport x=1")()
    yield a
    yield dsl.task(key="b").inputs(x=a.outputs.x).outputs(f=dsl.file("b.txt")).calls("echo $x > $f")()


# -- errors in the pipeline: exit 2, one line -------------------------------------------------

def duplicate_key(dsl):
    yield dsl.task(key="same").calls("true")()
    yield dsl.task(key="other").calls("true")()
    yield dsl.task(key="same-2" if _fixed() else "same").calls("true")()


def bad_key(dsl):
    """BAD_KEY: the key of the second task (as dsl.task(key=...))."""
    yield dsl.task(key="fine").calls("true")()
    key = "fixed-key" if _fixed() else os.environ["BAD_KEY"]
    yield dsl.task(key=key).calls("echo escaped > escaped.txt")()


def bad_key_prefix(dsl):
    """BAD_KEY: the prefix of a sub pipeline."""
    def sub(dsl):
        yield dsl.task(key="x").calls("echo escaped > escaped.txt")()
    yield dsl.sub_pipeline(sub, "fixed-" if _fixed() else os.environ["BAD_KEY"])


def generator_raises(dsl):
    yield dsl.task(key="first").calls("true")()
    yield dsl.task(key="last-good").calls("true")()
    rows = {"row-6": 6, "row-7": 7} if _fixed() else {"row-6": 6}
    yield dsl.task(key="row-7").inputs(n=rows["row-7"]).calls("true")()  # KeyError: the line asserted


def raises_after_completion(dsl):
    """Raises on its second invocation, once 'up' completed: a task has already run."""
    up = dsl.task(key="up").outputs(x=int).calls("export x=1")()
    yield up
    for t in dsl.wait_for_tasks(up):
        yield dsl.task(key="down").inputs(x=t.outputs.x).calls("true")()
        if not _fixed():
            raise RuntimeError("second pass is broken")


def raises_while_running(dsl):
    """Raises on its second invocation, while 'slow' runs (until the instance dir has a file `go`)."""
    up = dsl.task(key="up").calls("true")()
    yield up
    yield dsl.task(key="slow").outputs(f=dsl.file("f.txt")).calls(
        'while [[ ! -e $__pipeline_instance_dir/go ]]; do sleep 0.02; done\necho done > $f')()
    for _ in dsl.wait_for_tasks(up):
        if not _fixed():
            raise RuntimeError("second pass is broken")


def undeclared_output_ref(dsl):
    t1 = dsl.task(key="t1").outputs(x=int).calls("export x=1")()
    yield t1
    ref = t1.outputs.x if _fixed() else t1.outputs.nope
    yield dsl.task(key="t2").inputs(y=ref).calls("echo $y")()


def missing_script(dsl):
    yield dsl.task(key="ok").calls("true")()
    yield dsl.task(key="scripted").calls("bad_input_step.sh" if _fixed() else "no-such-script.sh")()


def plain_function(x):
    return {"y": x}


@DryPipe.python_call()
def decorated_function(x):
    return {"y": x}


def undecorated_call(dsl):
    yield dsl.task(key="plain").inputs(x=1).outputs(y=int).calls(
        decorated_function if _fixed() else plain_function)()


# -- errors of a task: exit 1, the message in its out.log and in the run's summary -------------

@DryPipe.python_call()
def returns_list():
    return {"x": 1} if _fixed_at_run_time() else [1, 2]


@DryPipe.python_call()
def returns_undeclared():
    return {"x": 1} if _fixed_at_run_time() else {"zzz": 1}


@DryPipe.python_call()
def returns_wrong_type():
    return {"x": 1} if _fixed_at_run_time() else {"x": "abc"}


def non_dict_return(dsl):
    yield dsl.task(key="py-list").outputs(x=int).calls(returns_list)()


def undeclared_return(dsl):
    yield dsl.task(key="py-undeclared").outputs(x=int).calls(returns_undeclared)()


def wrong_type_python(dsl):
    yield dsl.task(key="py-wrong-type").outputs(x=int).calls(returns_wrong_type)()


def wrong_type_bash(dsl):
    yield dsl.task(key="wrong-type").outputs(x=int).calls(f"if {FIXED}; then export x=1; else export x=abc; fi")()


def file_not_produced(dsl):
    yield dsl.task(key="no-file").outputs(f=dsl.file("f.txt")).calls(f"if {FIXED}; then echo > $f; fi")()


def var_never_set(dsl):
    yield dsl.task(key="no-var").outputs(x=int).calls(f"if {FIXED}; then export x=1; fi")()


def missing_input_file(dsl):
    yield dsl.task(key="reader").inputs(f=dsl.file("does-not-exist.txt")).calls('cat "$f"')()


def fixable_in_generator(dsl):
    """The user fixes the snippet of a failed task in the generator (FIX=1)."""
    snippet = "echo fixed > $f" if _fixed() else "echo forgot to write $f"
    yield dsl.task(key="t").outputs(f=dsl.file("f.txt")).calls(snippet)()


# -- waits that can never be satisfied ---------------------------------------------------------

def unsatisfiable_glob_wait(dsl):
    yield dsl.task(key="a").calls("true")()
    yield dsl.task(key="b").calls("sleep 0.2")()
    for _ in dsl.wait_for_matching_tasks("a" if _fixed() else "no-such-*"):
        yield dsl.task(key="never").calls("true")()


def unsatisfiable_key_wait(dsl):
    yield dsl.task(key="a").calls("true")()
    for _ in dsl.wait_for_tasks("a" if _fixed() else "ghost"):
        yield dsl.task(key="never").calls("true")()


# -- state files -------------------------------------------------------------------------------

def sleeper(dsl):
    """'quick' completes at once; 'slow' runs until the instance dir has a file `go`."""
    yield dsl.task(key="quick").outputs(f=dsl.file("q.txt")).calls("echo q > $f")()
    yield dsl.task(key="slow").outputs(f=dsl.file("s.txt")).calls(
        'while [[ ! -e $__pipeline_instance_dir/go ]]; do sleep 0.02; done\necho s > $f')()


# -- values and shells -------------------------------------------------------------------------

@DryPipe.python_call()
def py_passes(v):
    return {"r": v}


def shell_values(dsl):
    """VALUE reaches bash and python tasks as a literal input and as upstream variables."""
    v = os.environ["VALUE"]
    up = dsl.task(key="up").inputs(v=v).outputs(r=str, f=dsl.file("f.txt")).calls(
        'printf "%s" "$v" > "$f"\nexport r="$v"')()
    yield up
    py = dsl.task(key="py").inputs(v=v).outputs(r=str).calls(py_passes)()
    yield py
    yield dsl.task(key="down").inputs(a=up.outputs.r, b=py.outputs.r).outputs(r=str, n=int).calls(
        'printf "%s" "$a" > a.txt\nprintf "%s" "$b" > b.txt\nexport r="$b"\nexport n=${#a}')()
    # a value that breaks the declared type: the failure message quotes it
    yield dsl.task(key="bad-int").inputs(v=v).outputs(n=int).calls('export n="$v"')()
