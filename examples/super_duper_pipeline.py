"""A small pipeline, composed into guide_composition.py as the sub pipeline "s_".
It also runs on its own:

    drypipe run -pid ./run-super --generator super_duper_pipeline:super_duper_pipeline_dag_generator
"""


def super_duper_pipeline_dag_generator(dsl):
    prep = dsl.task(
        key="prepare"
    ).outputs(
        base=int
    ).calls("""
        export base=20
    """)()
    yield prep

    yield dsl.task(
        key="a-super-task"
    ).inputs(
        prep.outputs.base
    ).outputs(
        a_variable=int
    ).calls("""
        export a_variable=$(( base + 1 ))
    """)()
