"""The README's "Service mode" example, as the README shows it (tests/test_service.py checks
that the two stay the same, and runs it): a config generator for `drypipe service`.

Two kinds of datasets land in folders under the service home: `samples/X/` (a samples.tsv of
sample names and sequences: one GC-content task per sample, then a summary) and `texts/X/` (an
input.txt: a word count). Each folder is an instance of its pipeline type, started when its
marker X/.drypipe/state.ready appears:

    drypipe service -pid ./service-home --config-generator service_config:config   # from examples/
"""
from dry_pipe import DryPipe
from dry_pipe.pipeline import PipelineType

def gc_content(dsl):
    with open(dsl.file_in_pipeline_instance_dir("samples.tsv")) as f:
        samples = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    for name, seq in samples:
        yield dsl.task(key=f"gc.{name}").inputs(name=name, seq=seq).outputs(gc=dsl.file("gc.txt")).calls("""
            only_gc=${seq//[^GCgc]/}
            echo "$name $(( 100 * ${#only_gc} / ${#seq} ))% GC" > $gc
        """)()
    for m in dsl.wait_for_matching_tasks("gc.*"):
        yield dsl.task(key="summary").inputs(gcs=m.all.gc.as_glob_expression()).outputs(
            report=dsl.file("summary.txt")).calls("cat $gcs | sort > $report")()

def count_words(dsl):
    yield dsl.task(key="count").inputs(text=dsl.file_in_pipeline_instance_dir("input.txt")).outputs(
        counts=dsl.file("counts.txt")).calls('echo "$(wc -w < "$text") words" > $counts')()

def config():
    # PipelineType(name, pipeline, instances_dir (relative to the home), max_running=None)
    yield PipelineType("gc", gc_content, "samples", max_running=4)
    yield PipelineType("words", DryPipe.create_pipeline(count_words), "texts")
