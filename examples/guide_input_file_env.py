"""Guide, "Input file driven DAGs": one task per line of a TSV file named by an env var.

    export MY_INPUT_DATA_FILE_TSV=dataset.tsv      # e.g. the dataset.tsv next to this file
    drypipe run -pid ./run-tsv -p guide_input_file_env:dag_gen

Difference with the guide: lines are stripped of their newline before splitting, else the
last column would end with "\\n".
"""
import os


def dag_gen(dsl):
    with open(os.environ['MY_INPUT_DATA_FILE_TSV']) as f:
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
