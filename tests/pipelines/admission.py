"""Tasks for tests/test_admission.py: each appends its key to ran.txt in the instance dir
when its step runs, then sleeps SLEEP seconds (default 0.3)."""
import os


def sleepers(dsl):
    n = int(os.environ.get("N_TASKS", "6"))
    sleep = os.environ.get("SLEEP", "0.3")
    for i in range(n):
        yield dsl.task(key=f"t-{i}").outputs(out=dsl.file("out.txt")).calls(
            f'echo "$__task_key" >> "$__pipeline_instance_dir/ran.txt"\nsleep {sleep}\necho done > "$out"\n')()
