"""A dynamic pipeline for the crash-safety test: fileset fan-out, a second layer, fan-in.

Every task appends one line to executions/<key>.log in the instance dir each time it runs,
so the test can tell whether any task ran twice."""
import os

N = int(os.environ.get("CRASH_N", "120"))

LOG = 'echo "$__task_key $$" >> "$__pipeline_instance_dir/executions/$__task_key.log"\n'


def dag(dsl):
    prep = dsl.task(key="prep").inputs(n=N).outputs(chunks=dsl.fileset("chunk.*.txt")).calls(
        'mkdir -p "$__pipeline_instance_dir/executions"\n' + LOG +
        'for ((i = 0; i < n; i++)); do echo $i > chunk.$i.txt; done\n')()
    yield prep
    for _ in dsl.wait_for_tasks(prep):
        for h in prep.outputs.chunks.fetch():
            i = h.basename().split(".")[1]
            w = dsl.task(key=f"work.{i}").inputs(f=h, i=int(i)).outputs(r=dsl.file("r.txt"), v=int).calls(
                LOG + 'if (( i % 8 == 0 )); then sleep 2; else sleep 0.0$(( i % 7 )); fi\n'
                'export v=$(( $(cat $f) * 3 ))\necho $v > $r\n')()
            yield w
            yield dsl.task(key=f"post.{i}").inputs(v=w.outputs.v, r=w.outputs.r).outputs(
                p=dsl.file("p.txt")).calls(LOG + 'echo $(( v + $(cat $r) )) > $p\n')()
    for m in dsl.wait_for_matching_tasks("post.*"):
        yield dsl.task(key="total").inputs(ps=m.all.p.as_glob_expression()).outputs(t=int).calls(
            LOG + 'export t=$(cat $ps | paste -sd+ | bc)\n')()
