"""Guide, "Writing Pipelines > The DryPipe DSL > Tasks": two tasks calling python functions.

t1 produces a variable x (int), t2 consumes it and writes the file f.tsv.

    drypipe run -p guide_intro:my_pipeline --instance-directory=./run-intro

(run from this directory, or `-p examples.guide_intro:my_pipeline` from the repo root)
"""
from dry_pipe import DryPipe


def my_tasks(dsl):
    t1 = dsl.task(key="t1").outputs(x=int).calls(f1)()
    yield t1
    yield dsl.task(key="t2").inputs(t1.outputs.x).outputs(f=dsl.file("f.tsv")).calls(f2)()


@DryPipe.python_call()
def f1():
    return {"x": 123}


@DryPipe.python_call()
def f2(x, f):
    # erratum: the guide opens f without "w"
    with open(f, "w") as _f:
        _f.write(f"...{x}")


def my_pipeline():
    return DryPipe.create_pipeline(my_tasks)
