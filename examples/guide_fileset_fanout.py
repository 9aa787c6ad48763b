"""Guide, "DAG driven by task execution": a fileset fan-out, then a fan-in.

    prepare-chunks --work-chunk.1.fasta--> task-for-chunk.1 --results.json--> analyze-all-work-pieces
                   --work-chunk.2.fasta--> task-for-chunk.2 --results.json-->
                   ...
                   --work-chunk.N.fasta--> task-for-chunk.N --results.json-->

prepare-chunks splits the instance's chimp.fasta in chunks of SEQUENCES_PER_CHUNK
sequences; the number of chunks (so of task-for-chunk.N tasks) is known only once it ran.
Seed the instance dir with the input before running:

    mkdir ./run-chunks && cp chimp.fasta ./run-chunks/
    drypipe run -pid ./run-chunks --generator guide_fileset_fanout:dag_gen

Differences with the guide: chunk files are named work-chunk.N.fasta (the fileset's glob),
numbered from 1 as in the diagram, and opened for writing; task-for-chunk.N writes its
results.json (a declared output file must exist when the task ends).
"""
import json
import os

from dry_pipe import DryPipe

SEQUENCES_PER_CHUNK = 3


def get_next_chunk_from(lines, n=SEQUENCES_PER_CHUNK):
    """Yield lists of n FASTA records (each record: its header line and sequence lines)."""
    records = []
    for line in lines:
        if line.startswith(">"):
            records.append([line])
        elif records:
            records[-1].append(line)
    for i in range(0, len(records), n):
        yield records[i:i + n]


def write_chunk_into(records, chunk_file):
    for record in records:
        chunk_file.writelines(record)


@DryPipe.python_call()
def create_n_chunks_of_work(input_fasta, __task_output_dir):
    with open(input_fasta) as f:
        c = 1
        for w in get_next_chunk_from(f.readlines()):
            with open(os.path.join(__task_output_dir, f"work-chunk.{c}.fasta"), "w") as chunk_file:
                write_chunk_into(w, chunk_file)
            c += 1
    print(f"wrote {c - 1} chunks")


def read_from(chunk_result_file):
    with open(chunk_result_file) as f:
        return json.load(f)


@DryPipe.python_call()
def analyze_all(pattern_for_all_chunks, a_result_file):
    with open(a_result_file, "w") as _a_result_file:
        # Because we are in a Python Call, we can iterate over pattern_for_all_chunks().
        # It is equivalent to calling :
        # glob.glob(os.path.expandvars("$__pipeline_instance_dir/output/task-for-chunk.*/results.json"))
        # but way more DRY !
        total_sequences = total_bases = 0
        for chunk_file in pattern_for_all_chunks():
            some_results = read_from(chunk_file)
            total_sequences += some_results["sequences"]
            total_bases += some_results["bases"]
            _a_result_file.write(f"got {some_results} from chunk {chunk_file}\n")
        _a_result_file.write(f"total: {total_sequences} sequences, {total_bases} bases\n")


def dag_gen(dsl):
    prepare_chunks = dsl.task(
        key="prepare-chunks"
    ).inputs(
        input_fasta=dsl.file('chimp.fasta')
    ).outputs(
        work_chunks=dsl.fileset('work-chunk.*.fasta')
    ).calls(
        create_n_chunks_of_work
    )()

    yield prepare_chunks

    for _ in dsl.wait_for_tasks(prepare_chunks):
        # dsl.wait_for_tasks ensures that we can only get here when prepare_chunks
        # has successfully completed
        for work_chunk_file_handle in prepare_chunks.outputs.work_chunks.fetch():
            # extract number from file name, i.e.
            # work-chunk.3.fasta -> 3
            chunk_number = work_chunk_file_handle.basename().split(".")[1]
            yield dsl.task(
                key=f"task-for-chunk.{chunk_number}"
            ).inputs(
                f=work_chunk_file_handle
            ).outputs(
                results_file=dsl.file("results.json")
            ).calls("""
                #!/usr/bin/env bash
                echo "work on $f"
                sequences=$(grep -c '^>' "$f")
                bases=$(grep -v '^>' "$f" | tr -d '\\n' | wc -c)
                echo "{\\"chunk\\": \\"${f##*/}\\", \\"sequences\\": $sequences, \\"bases\\": $bases}" > $results_file
            """)()

    # wait_for_matching_tasks("task-for-chunk.*") ensures that we can only get here when ALL tasks
    # matching task-for-chunk.* have successfully completed
    for matcher in dsl.wait_for_matching_tasks("task-for-chunk.*"):
        yield dsl.task(
            key="analyze-all-work-pieces"
        ).inputs(
            # pattern_for_all_chunks is $__pipeline_instance_dir/output/task-for-chunk.*/results.json
            pattern_for_all_chunks=matcher.all.results_file.as_glob_expression()
        ).outputs(
            a_result_file=dsl.file("final-result-file")
        ).calls("""
            #!/usr/bin/env bash
            # the two following commands are equivalent:
            ls $__pipeline_instance_dir/output/task-for-chunk.*/results.json
            ls $pattern_for_all_chunks
            # the second is way more DRY (Don't Repeat Yourself) !
        """).calls(
            analyze_all
        )()
