"""Pipelines for tests/test_remote_fixes.py, on the test sshd's host (and its Slurm cluster).

The remote TaskConf comes from env vars read when the generator runs (REMOTE_SPECS, REMOTE_BASE),
not at import. Tasks record what they did in files of the remote base dir
($__pipeline_instance_dir/.. on the host: one per test), never in a shared file."""
import os

from dry_pipe import TaskConf


def remote(**extra):
    return TaskConf(ssh_specs=os.environ["REMOTE_SPECS"], remote_base_dir=os.environ["REMOTE_BASE"], **extra)


def counted(dsl):
    """One remote task that appends a line per execution to <base>/executions.log."""
    yield dsl.task(key="counted", task_conf=remote()).outputs(o=dsl.file("o.txt")).calls(
        'echo "$__task_key $$" >> "$__pipeline_instance_dir/../executions.log"; echo done > "$o"')()


def fails_once(dsl):
    """One remote task that fails its first execution and succeeds afterwards (its remote task dir
    then holds state.failed.0 from the first attempt when the second one is launched)."""
    yield dsl.task(key="flaky", task_conf=remote()).outputs(o=dsl.file("o.txt")).calls(
        'echo "$__task_key $$" >> "$__pipeline_instance_dir/../executions.log"\n'
        'marker="$__pipeline_instance_dir/../flaky-failed-once"\n'
        'if [[ ! -e $marker ]]; then : > "$marker"; exit 1; fi\n'
        'echo done > "$o"')()


def timed(dsl):
    """N_TASKS remote tasks that each log their start and end ($EPOCHREALTIME) in <base>/times.log
    and run SLEEP_FOR seconds in between."""
    for i in range(int(os.environ.get("N_TASKS", "6"))):
        yield dsl.task(key=f"t-{i}", task_conf=remote()).inputs(i=i, t=os.environ.get("SLEEP_FOR", "1.5")).outputs(
            o=dsl.file("o.txt")).calls(
            'log="$__pipeline_instance_dir/../times.log"\n'
            'echo "$__task_key start $EPOCHREALTIME" >> "$log"\n'
            'sleep "$t"\n'
            'echo "$__task_key end $EPOCHREALTIME" >> "$log"\n'
            'echo "$i" > "$o"')()


def remote_slurm(dsl):
    """N_ARRAY remote Slurm tasks (one TaskConf: one array)."""
    conf = remote(executer_type="slurm")
    for i in range(int(os.environ.get("N_ARRAY", "3"))):
        yield dsl.task(key=f"rs-{i}", task_conf=conf).inputs(i=i).outputs(o=dsl.file("o.txt")).calls(
            'sleep 2; echo "$i" > "$o"')()
