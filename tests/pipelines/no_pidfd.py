"""Pipelines for tests/test_no_pidfd.py: the local executor without pidfds (polling fallback)."""
import os


def chain_and_independent(dsl):
    """A chain of CHAIN tasks (each reads its upstream's output) beside INDEP independent ones."""
    n_chain = int(os.environ.get("CHAIN", "20"))
    n_indep = int(os.environ.get("INDEP", "20"))
    prev = dsl.task(key="c-0").outputs(out=dsl.file("out.txt")).calls("echo 0 > $out")()
    yield prev
    for i in range(1, n_chain):
        prev = dsl.task(key=f"c-{i}").inputs(p=prev.outputs.out, i=i).outputs(out=dsl.file("out.txt")).calls(
            'cat "$p" > "$out"; echo $i >> "$out"')()
        yield prev
    for i in range(n_indep):
        yield dsl.task(key=f"i-{i}").inputs(i=i).outputs(out=dsl.file("out.txt")).calls("echo $i > $out")()


def independent(dsl):
    """N_TASKS trivial independent tasks (the timing comparison)."""
    for i in range(int(os.environ.get("N_TASKS", "200"))):
        yield dsl.task(key=f"t-{i}").inputs(i=i).outputs(out=dsl.file("out.txt")).calls("echo $i > $out")()


def slow_once(dsl):
    """One task that sleeps SLEEP seconds; each run of it appends a line to $RUNS_FILE."""
    yield dsl.task(key="slow").outputs(f=dsl.file("f.txt")).calls(
        'echo "$$" >> "$RUNS_FILE"\nsleep "${SLEEP:-3}"\necho done > $f\n')()
