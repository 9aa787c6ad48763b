"""Guide, "Semi hardcoded DAGs": one generator factory, two pipelines over hardcoded data.

    drypipe run -pid ./run-123 -p guide_semi_hardcoded:pipeline_1_2_3
    drypipe run -pid ./run-789 -p guide_semi_hardcoded:pipeline_7_8_9_543

(The guide's pipeline_1_2_3 squares [1, 3, 4]; here it squares what its name says.)
"""
from dry_pipe import DryPipe


def create_dag_generator(beautiful_numbers):
    def dag_gen(dsl):
        for i in beautiful_numbers:
            yield dsl.task(
                key=f"square-{i}"
            ).inputs(
                x=i
            ).outputs(
                f=dsl.file("file_with_squared_number.txt")
            ).calls("""
                #!/usr/bin/env bash
                echo $(( $x * $x)) > $f
            """)()
    return dag_gen


def pipeline_1_2_3():
    return DryPipe.create_pipeline(
        create_dag_generator([1, 2, 3]),
    )


def pipeline_7_8_9_543():
    return DryPipe.create_pipeline(
        create_dag_generator([7, 8, 9, 543]),
    )
