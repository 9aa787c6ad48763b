"""Guide, "The DAG": t1 (bash) -> t2 (python) -> t3 (python), t1 also feeds t3.

    t1 --x: int--> t2 --f.tsv--> t3
    t1 --z.json------------------> t3

    drypipe run -pid ./run-dag --generator guide_dag:my_dag_generator
"""
import json

from dry_pipe import DryPipe


def my_dag_generator(dsl):
    t1 = dsl.task(key="t1")\
        .outputs(x=dsl.var(int), z=dsl.file("z.json"))\
        .calls("""
            #!/usr/bin/env bash
            export x=123
            echo '{"i": "abc", "a": [56,57]}' > $z
        """)()
    yield t1

    t2 = dsl.task(key="t2")\
        .inputs(t1.outputs.x)\
        .outputs(f=dsl.file("f.tsv"))\
        .calls(f2)()
    yield t2

    yield dsl.task(key="t3")\
        .inputs(t1.outputs.z, t2.outputs.f)\
        .outputs(t=dsl.file("pipeline-result.tsv"))\
        .calls(f3)()


@DryPipe.python_call()
def f2(x, f):
    # x arrives as an int: the type declared by t1
    with open(f, "w") as out:
        out.write("x\tx_squared\n")
        out.write(f"{x}\t{x * x}\n")


@DryPipe.python_call()
def f3(z, f, t):
    with open(z) as zf:
        z_data = json.load(zf)
    with open(f) as ff:
        header, row = [line.rstrip("\n").split("\t") for line in ff]
    values = dict(zip(header, row))
    with open(t, "w") as out:
        out.write("i\tsum_a\tx\tx_squared\n")
        out.write(f"{z_data['i']}\t{sum(z_data['a'])}\t{values['x']}\t{values['x_squared']}\n")
