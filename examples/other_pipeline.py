"""Another small pipeline, composed into guide_composition.py as the sub pipeline "o_".
It also runs on its own:

    drypipe run -pid ./run-other --generator other_pipeline:other_pipeline_dag_gen
"""


def other_pipeline_dag_gen(dsl):
    for i in [1, 2, 3]:
        yield dsl.task(
            key=f"do-it-{i}"
        ).inputs(
            i=i
        ).outputs(
            a_file_defined_in_do_it_tasks=dsl.file("do-it.txt")
        ).calls("""
            echo "do-it $i: $(( i * 100 ))" > $a_file_defined_in_do_it_tasks
        """)()
