"""DAG generators for tests/test_trace_dag.py (drypipe trace, drypipe dag).

fan: `split` writes part.1.txt .. part.N.txt (a fileset); a `square.N` per part squares its
number; a `report-N` per square reads its variable; `sum` reads every square's file through a
glob over their output dirs (a fan-in).

fails: `ok` completes, `bad` fails at step 1 with exit 7 (until the marker file `let-bad-pass`
exists in the instance dir), `after-bad` consumes `bad`'s output."""
from dry_pipe import DryPipe

PARTS = 5


def fan(dsl):
    split = dsl.task(key="split").outputs(parts=dsl.fileset("part.*.txt")).calls(f"""
        for i in $(seq 1 {PARTS}); do echo $i > "$__task_output_dir/part.$i.txt"; done
    """)()
    yield split
    for _ in dsl.wait_for_tasks(split):
        for h in split.outputs.parts.fetch():
            n = h.basename().split(".")[1]
            square = dsl.task(key=f"square.{n}").inputs(f=h).outputs(sq=int, out=dsl.file("sq.txt")).calls(
                'export sq=$(( $(cat "$f") ** 2 )); echo $sq > "$out"')()
            yield square
            yield dsl.task(key=f"report-{n}").inputs(square.outputs.sq).outputs(line=str).calls(
                'export line="square: $sq"')()
    for matcher in dsl.wait_for_matching_tasks("square.*"):
        yield dsl.task(key="sum").inputs(all=matcher.all.out.as_glob_expression()).outputs(total=int).calls(
            "export total=$(cat $all | awk '{s += $1} END {print s}')")()


@DryPipe.python_call()
def count(n):
    return {"m": n + 1}


def fails(dsl):
    ok = dsl.task(key="ok").outputs(n=int).calls("export n=1")()
    yield ok
    bad = dsl.task(key="bad").inputs(ok.outputs.n).outputs(m=int).calls('echo "step 0 of bad"').calls("""
        if [[ ! -e "$__pipeline_instance_dir/let-bad-pass" ]]; then echo "bad fails" >&2; exit 7; fi
    """).calls(count)()
    yield bad
    yield dsl.task(key="after-bad").inputs(bad.outputs.m).calls('echo "got $m"')()
