"""Pipelines of tests/test_report_html.py (drypipe report).

`mixed`: `prep` feeds three `work.N` (a value and a file); `summary` gathers them (a glob);
`flaky` fails until the file `fixed` is in the instance dir; `boom` prints numbered lines and a
last word on stderr, then fails (exit 3); `after-boom` waits for it forever.

`blocking`: `quick` ends at once, `blocker` runs until the file `release` is in the instance dir."""
from dry_pipe import DryPipe


@DryPipe.python_call()
def total(n, parts, result):
    with open(result, "w") as f:
        f.write(f"{n} {len(list(parts()))}\n")


def mixed(dsl):
    prep = dsl.task(key="prep").outputs(n=int, seed=dsl.file("seed.txt")).calls("""
        echo 42 > "$seed"
        export n=3
    """)()
    yield prep
    for i in (1, 2, 3):
        yield dsl.task(key=f"work.{i}").inputs(prep.outputs.n, prep.outputs.seed).outputs(
            part=dsl.file("part.txt")).calls(f"""
            echo "work {i} of $n from $(cat "$seed")" > "$part"
        """)()
    for matcher in dsl.wait_for_matching_tasks("work.*"):
        yield dsl.task(key="summary").inputs(
            prep.outputs.n, parts=matcher.all.part.as_glob_expression()
        ).outputs(result=dsl.file("result.txt")).calls(total)()
    yield dsl.task(key="flaky").calls('[[ -e "$__pipeline_instance_dir/fixed" ]] || { echo "not fixed"; exit 4; }')()
    boom = dsl.task(key="boom").outputs(x=int).calls("""
        for i in $(seq 1 60); do echo "boom line $i"; done
        echo "the widget broke: <b>not bold</b> & co" >&2
        exit 3
    """)()
    yield boom
    yield dsl.task(key="after-boom").inputs(boom.outputs.x).calls("true")()


def blocking(dsl):
    yield dsl.task(key="quick").calls("echo quick")()
    yield dsl.task(key="blocker").calls("""
        echo "blocker waits"
        while [[ ! -e "$__pipeline_instance_dir/release" ]]; do sleep 0.05; done
    """)()
