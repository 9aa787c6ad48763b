"""The dynamic pipeline of the model-based test (tests/test_model.py).

    a (2 steps) --n--> b (1 step, its snippet changes when the marker `gen-v2` exists)
      |--n--> w.0, w.1, w.2 (yielded once a completed)
    z waits for every w.* (dsl.wait_for_matching_tasks), consumes b's file

Each step first appends `<key> <step> <epoch time>` to $__pipeline_instance_dir/executions.txt,
then sleeps a little (so that kills land in the middle of steps). A step fails while the
marker `fail-<key>` exists in the instance dir."""
import os

STEP = ('echo "$__task_key {step} $EPOCHREALTIME" >> "$__pipeline_instance_dir/executions.txt"\n'
        'sleep 0.{pause}\n'
        '[[ ! -e "$__pipeline_instance_dir/fail-$__task_key" ]] || {{ echo "failing on purpose"; exit 7; }}\n')
UPSTREAM = {"b": ["a"], "w.0": ["a"], "w.1": ["a"], "w.2": ["a"], "z": ["b"]}
KEYS = ["a", "b", "w.0", "w.1", "w.2", "z"]
STEPS = {"a": 2, "b": 1, "w.0": 1, "w.1": 1, "w.2": 1, "z": 1}


def dag(dsl):
    v2 = os.path.exists(dsl.file_in_pipeline_instance_dir("gen-v2"))
    a = dsl.task(key="a").outputs(n=int).calls(STEP.format(step=0, pause=2) + "export n=3\n").calls(
        STEP.format(step=1, pause=1))()
    yield a
    b = dsl.task(key="b").inputs(n=a.outputs.n).outputs(f=dsl.file("b.txt")).calls(
        STEP.format(step=0, pause=1) + ("echo v2 $n > b.txt\n" if v2 else "echo v1 $n > b.txt\n"))()
    yield b
    for _ in dsl.wait_for_tasks(a):
        for i in range(a.outputs.n.fetch()):
            yield dsl.task(key=f"w.{i}").inputs(n=a.outputs.n, i=i).outputs(r=int).calls(
                STEP.format(step=0, pause=i + 1) + "export r=$(( n * i ))\n")()
    for _ in dsl.wait_for_matching_tasks("w.*"):
        yield dsl.task(key="z").inputs(f=b.outputs.f).outputs(t=str).calls(
            STEP.format(step=0, pause=1) + 'export t="$(cat "$f")"\n')()
