"""Guide, "Calling Python functions from Tasks": the previous pipeline with python calls.

Note1: arguments are parsed according to the types given in the generator.
Note2: output vars of the produces(...) clause are also passed as arguments.
Note3: output variables are returned in a dict.
Note4: print() writes to $__pipeline_instance_dir/.drypipe/$__task_key/out.log

Difference with the guide: x * y is a float, so `result` is declared float (the guide's
`result=int` would fail the task with "output variable result=int given '386.41...'").

    drypipe run -pid ./run-pyvars --generator guide_var_deps_python:my_pipeline_dag_generator
"""
import os

from dry_pipe import DryPipe


@DryPipe.python_call()
def f1(x, y, z):
    print(f"all variables in the consumes(...) clause are in the env {x}, {y}, {z}")
    if isinstance(x, int):
        print("Wow, x has the correct type !")
    else:
        # will write to $__pipeline_instance_dir/.drypipe/$__task_key/out.log
        print("Something is seriously wrong !")

    x_from_env = os.environ["x"]
    if isinstance(x_from_env, str):
        print("""one could grab vars from the environment, but
receiving pre parsed arguments is more convenient !""")
    print("")
    return {
        "result": x * y
    }


@DryPipe.python_call()
def f2(r, f):
    with open(f, "w") as f_handle:
        f_handle.write(f"we got data from t1: {r}")


def my_pipeline_dag_generator(dsl):
    t1 = dsl.task(
        key="t1"
    ).inputs(
        x=123,
        y=3.14159265359,
        z='abc'
    ).outputs(
        result=float
    ).calls(
        f1
    )()

    yield t1

    yield dsl.task(
        key="t2"
    ).inputs(
        r=t1.outputs.result
    ).outputs(
        f=dsl.file("final-result.txt")
    ).calls(
        f2
    )()
