"""Small DAG generators exercising the engine, used by tests/test_engine.py."""
import os

from dry_pipe import DryPipe, TaskConf


def _count_invocation(dsl):
    with open(dsl.file_in_pipeline_instance_dir("generator-calls.txt"), "a") as f:
        f.write("x\n")


def static_chain(dsl):
    _count_invocation(dsl)
    n = int(os.environ.get("CHAIN_LENGTH", "10"))
    prev = dsl.task(key="c-0").outputs(out=dsl.file("out.txt")).calls("echo 0 > $out")()
    yield prev
    for i in range(1, n):
        prev = dsl.task(key=f"c-{i}").inputs(p=prev.outputs.out, i=i).outputs(out=dsl.file("out.txt")).calls(
            'cat "$p" > "$out"; echo $i >> "$out"')()
        yield prev


def fail_then_downstream(dsl):
    a = dsl.task(key="ok").outputs(x=int).calls("export x=1")()
    yield a
    b = dsl.task(key="bad").inputs(x=a.outputs.x).outputs(f=dsl.file("f.txt")).calls(
        "echo before\nfalse\necho after > $f\n")()
    yield b
    yield dsl.task(key="after-bad").inputs(f=b.outputs.f).calls("cat $f")()


@DryPipe.python_call()
def returns_list():
    return [1, 2]


@DryPipe.python_call()
def returns_undeclared():
    return {"zzz": 1}


@DryPipe.python_call()
def step1_py(a, b):
    return {"c": a + b}


def output_errors(dsl):
    yield dsl.task(key="never-set").outputs(x=int).calls("echo no export")()
    yield dsl.task(key="wrong-type").outputs(x=int).calls("export x=abc")()
    yield dsl.task(key="missing-file").outputs(f=dsl.file("f.txt")).calls("true")()
    yield dsl.task(key="py-list").outputs(x=int).calls(returns_list)()
    yield dsl.task(key="py-undeclared").outputs(x=int).calls(returns_undeclared)()
    yield dsl.task(key="missing-input").inputs(f=dsl.file("does-not-exist.txt")).calls("cat $f")()


def steps(dsl):
    yield dsl.task(key="multi").inputs(a=2).outputs(b=int, c=int, d=str).calls(
        "export b=$(( a * 10 ))").calls(step1_py).calls('export d="b=$b c=$c"')()
    yield dsl.task(key="fails-at-1").outputs(x=int).calls("export x=1").calls("exit 4")()


def sleeper(dsl):
    yield dsl.task(key="sleeper").outputs(f=dsl.file("f.txt")).calls(
        "echo started > $f\nsleep 60\n")()
    yield dsl.task(key="quick").calls("true")()


def scratch_and_vars(dsl):
    yield dsl.task(key="env", task_conf=TaskConf(extra_env={"MY_SETTING": "it's set"})).outputs(
        f=dsl.file("env.txt")).calls("""
[[ -d $__scratch_dir ]] && echo "scratch exists" > $f
[[ $PWD == "$__task_output_dir" ]] && echo "cwd is output dir" >> $f
echo "MY_SETTING=$MY_SETTING" >> $f
""")()


def scratch_recycled(dsl):
    """48 tasks (more than a run launches before the first ends) that record their scratch
    dir's inode; one leaves a file there, one makes it read-only."""
    for i in range(48):
        keep = 'echo kept > "$__scratch_dir/k"\n' if i == 3 else ""
        ro = 'chmod 555 "$__scratch_dir"\n' if i == 5 else ""
        yield dsl.task(key=f"s-{i}").outputs(ino=dsl.file("ino")).calls(
            f'[[ -w $__scratch_dir ]] && stat -c %i "$__scratch_dir" > $ino\n{keep}{ro}')()


def many(dsl):
    n = int(os.environ.get("N_TASKS", "6"))
    for i in range(n):
        yield dsl.task(key=f"m-{i}").inputs(i=i).outputs(out=dsl.file("o.txt")).calls(
            "sleep 0.2; echo $i > $out")()


def fan_out_in(dsl):
    _count_invocation(dsl)
    n = int(os.environ.get("FAN", "5"))
    prep = dsl.task(key="prep").inputs(n=n).outputs(chunks=dsl.fileset("chunk.*.txt")).calls(
        'for i in $(seq 1 $n); do echo $i > chunk.$i.txt; done')()
    yield prep
    for _ in dsl.wait_for_tasks(prep):
        for h in prep.outputs.chunks.fetch():
            i = h.basename().split(".")[1]
            yield dsl.task(key=f"work.{i}").inputs(f=h).outputs(r=dsl.file("r.txt"), v=int).calls(
                'export v=$(( $(cat $f) * 2 )); echo $v > $r')()
    for m in dsl.wait_for_matching_tasks("work.*"):
        total = sum(m.all.v.fetch())
        yield dsl.task(key="sum").inputs(p=m.all.r.as_glob_expression(), total=total).outputs(
            s=dsl.file("sum.txt")).calls('cat $p | paste -sd+ | bc > $s; echo $total >> $s')()


def waits_forever(dsl):
    yield dsl.task(key="a").calls("true")()
    for _ in dsl.wait_for_matching_tasks("no-such-*"):
        yield dsl.task(key="never").calls("true")()


def raises(dsl):
    yield dsl.task(key="fine").calls("true")()
    raise ValueError("bad dataset row 7")


def pipeline_factory():
    return DryPipe.create_pipeline(static_chain)


def thousand(dsl):
    for i in range(int(os.environ.get("N_TASKS", "1000"))):
        yield dsl.task(key=f"t-{i}").inputs(i=i).outputs(out=dsl.file("out.txt")).calls("echo $i > $out")()


def ancestry(dsl):
    # every process between the step and the orchestrator, by name
    yield dsl.task(key="who").outputs(chain=dsl.file("chain.txt")).calls("""
pid=$BASHPID
while [[ $pid != "$ORCH_PID" && $pid -gt 1 ]]; do
  echo "$(cat /proc/$pid/comm)" >> $chain
  pid=$(awk '{print $4}' /proc/$pid/stat)
done
""")()


def fails_after_thousands(dsl):
    """`seed`; once it completed, BIG_N tasks with a TaskConf of their own (more than the store
    sends its writer process at once), then, unless FIXED is set, an error: MODE=raise raises,
    MODE=missing yields a task consuming the output of one never yielded."""
    seed = dsl.task(key="seed").outputs(out=dsl.file("out.txt")).calls("echo 1 > $out")()
    yield seed
    for _ in dsl.wait_for_tasks(seed):
        conf = TaskConf(extra_env={"BIG": "1"})
        for i in range(int(os.environ.get("BIG_N", "2500"))):
            yield dsl.task(key=f"big-{i}", task_conf=conf).inputs(s=seed.outputs.out).calls("true")()
        if os.environ.get("FIXED"):
            return
        if os.environ.get("MODE") == "missing":
            ghost = dsl.task(key="ghost").outputs(out=dsl.file("g.txt")).calls("true")()
            yield dsl.task(key="orphan").inputs(g=ghost.outputs.out).calls("true")()
        else:
            raise ValueError("bad dataset row 2501")
