"""Guide, "Variable dependencies between Tasks", with bash snippets.

t1 receives x (int), y (float) and z (str) in its environment and produces the variable
`result`; t2 receives it as $r.

Difference with the guide: the guide declares `result=int` and computes `$(( x * y ))`,
but bash arithmetic is integer only and fails on y=3.14159265359. Here `result` is a
float, computed with awk.

    drypipe run -pid ./run-vars --generator guide_var_deps_bash:my_pipeline_dag_generator
"""


def my_pipeline_dag_generator(dsl):
    t1 = dsl.task(
        key="t1"
    ).inputs(
        x=123,
        y=3.14159265359,
        z='abc'
    ).outputs(
        result=float
    ).calls("""
        #!/usr/bin/env bash
        echo "all variables in the consumes(...) clause are in the env" $x, $y, $z
        # 'export' is used to assign output variable in the produces(...) clause
        export result=$(awk -v x="$x" -v y="$y" 'BEGIN { printf "%.10f", x * y }')
    """)()

    yield t1

    yield dsl.task(
        key="t2"
    ).inputs(
        r=t1.outputs.result
    ).outputs(
        f=dsl.file("final-result.txt")
    ).calls("""
        #!/usr/bin/env bash
        echo "we got data from t1: $r" > $f
    """)()
