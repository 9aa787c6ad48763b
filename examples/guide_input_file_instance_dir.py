"""Guide, "Input file driven DAGs", second variant: the TSV file lives in the pipeline
instance dir, which is seeded with it before running:

    mkdir ./pipeline-instance-dir-123
    cp dataset.tsv ./pipeline-instance-dir-123
    drypipe run -p guide_input_file_instance_dir:my_pipeline --instance-dir=./pipeline-instance-dir-123

The instance dir then holds all the data of the pipeline instance, its input included.
(The guide's my_pipeline passes itself to create_pipeline: it means dag_gen.)
"""
from dry_pipe import DryPipe


def dag_gen(dsl):
    with open(dsl.file_in_pipeline_instance_dir("dataset.tsv")) as f:
        for line in f.readlines():
            i, other_arg = line.rstrip("\n").split("\t")
            yield dsl.task(
                key=f"t-{i}"
            ).inputs(
                x=other_arg
            ).outputs(
                f=dsl.file("result.txt")
            ).calls("""
                #!/usr/bin/env bash
                echo "compute data for $x" > $f
            """)()


def my_pipeline():
    return DryPipe.create_pipeline(dag_gen)
