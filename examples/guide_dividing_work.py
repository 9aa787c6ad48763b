"""Guide, "Dividing work into smaller chunks": two independent tasks, run in parallel.

    drypipe run -pid ./run-two --generator guide_dividing_work:my_pipeline_dag_generator
"""


def my_pipeline_dag_generator(dsl):
    yield dsl.task(
        key="t1"
    ).outputs(
        a_file=dsl.file("a-file.txt")
    ).calls("""
        #!/usr/bin/env bash
        echo 'hello' > $a_file
    """)()

    yield dsl.task(
        key="t2"
    ).outputs(
        other_file=dsl.file("another-file.txt")
    ).calls("""
        #!/usr/bin/env bash
        echo 'world' > $other_file
    """)()
