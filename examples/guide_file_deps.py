"""Guide, "File dependencies between Tasks": t2 consumes the file produced by t1,
so DryPipe launches t2 when (and only when) t1 has completed.

    drypipe run -pid ./run-files --generator guide_file_deps:my_pipeline_dag_generator
"""


def my_pipeline_dag_generator(dsl):
    t1 = dsl.task(
        key="t1"
    ).inputs(
        x=123
    ).outputs(
        result=dsl.file("f.txt")
    ).calls("""
        echo $(( x * x )) > $result
    """)()

    yield t1

    # we keep a reference to t1 so we can refer to t1.outputs.result
    yield dsl.task(
        key="t2"
    ).inputs(
        r=t1.outputs.result
    ).outputs(
        f=dsl.file("final-result.txt")
    ).calls("""
        result_from_t1="$(cat $r)"
        echo "we got data from t1: $result_from_t1" > $f
    """)()
