"""Tasks for tests/test_admission.py: each appends its key to ran.txt in the instance dir
when its step runs, then sleeps SLEEP seconds (default 0.3)."""
import os


def sleepers(dsl):
    n = int(os.environ.get("N_TASKS", "6"))
    sleep = os.environ.get("SLEEP", "0.3")
    for i in range(n):
        yield dsl.task(key=f"t-{i}").outputs(out=dsl.file("out.txt")).calls(
            f'echo "$__task_key" >> "$__pipeline_instance_dir/ran.txt"\nsleep {sleep}\necho done > "$out"\n')()


def environ(dsl):
    """One task that writes its environment (env) and the one its launcher was started with."""
    yield dsl.task(key="e").outputs(env=dsl.file("env.txt"), start=dsl.file("start.txt")).calls(
        'env > "$env"\n'  # (read by builtins: an exec'd tr would read its own)
        'while IFS= read -r -d "" v; do echo "$v"; done < "/proc/$BASHPID/environ" > "$start"\n')()
