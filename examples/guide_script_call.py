"""Guide: `calls("my-script.sh")` runs a bash script found in $__pipeline_code_dir
(by default the directory of this file, where my-script.sh lives).

    drypipe run -pid ./run-script --generator guide_script_call:my_pipeline_dag_generator
"""


def my_pipeline_dag_generator(dsl):
    t1 = dsl.task(
        key="t1"
    ).inputs(
        x=123
    ).outputs(
        result=dsl.file("f.txt"),
        squared=int
    ).calls(
        "my-script.sh"
    )()
    yield t1

    yield dsl.task(
        key="t2"
    ).inputs(
        r=t1.outputs.result,
        s=t1.outputs.squared
    ).outputs(
        f=dsl.file("final-result.txt")
    ).calls("""
        echo "t1 wrote: $(cat $r), and exported squared=$s" > $f
    """)()
