"""DAG generators the benchmarks run, sized by environment variables.

    DRYPIPE_BENCH_INDEPENDENT_N  tasks of independent_1000 (default 1000)
    DRYPIPE_BENCH_CHAIN_N        length of chain_200 (default 200)
    DRYPIPE_BENCH_RUN20K_N       tasks of independent_20k (default 20000)
    DRYPIPE_BENCH_STATIC_N       tasks of static_100k (default 100000)
    DRYPIPE_BENCH_SLURM_N        tasks of slurm_1000 (default 1000)
    DRYPIPE_BENCH_REMOTE_N       tasks of remote_200 (default 200), on the host of
                                 DRYPIPE_BENCH_REMOTE_SPECS in DRYPIPE_BENCH_REMOTE_BASE

The bash each task runs is produced by the *_command functions below, which the floors in
run.py use too, so DryPipe and its floor run exactly the same commands."""
from __future__ import annotations

import os


def size(name: str, default: int) -> int:
    return int(os.environ.get(f"DRYPIPE_BENCH_{name}_N", default))


def independent_command(i: int, out: str) -> str:
    return f"echo {i} > {out}\n"


def chain_command(i: int, prev: str | None, out: str) -> str:
    if prev is None:
        return f"echo {i} > {out}\n"
    return f"cat {prev} > {out}; echo {i} >> {out}\n"


def independent_1000(dsl):
    """N tasks with no dependencies, each writing one small file."""
    for i in range(size("INDEPENDENT", 1000)):
        yield dsl.task(key=f"t-{i}").inputs(i=i).outputs(out=dsl.file("out.txt")).calls(
            independent_command("$i", "$out"))()


def independent_20k(dsl):
    """independent_1000's tasks, 20,000 of them (DRYPIPE_BENCH_RUN20K_N): a run at scale."""
    for i in range(size("RUN20K", 20_000)):
        yield dsl.task(key=f"t-{i}").inputs(i=i).outputs(out=dsl.file("out.txt")).calls(
            independent_command("$i", "$out"))()


def slurm_1000():
    """independent_1000's tasks, sized by DRYPIPE_BENCH_SLURM_N, each run as a Slurm job: the
    pipeline's TaskConf sends them all to Slurm (as job arrays, one per MaxArraySize chunk)."""
    from drypipe import DryPipe, TaskConf  # here, not at the top: the prepare floor imports this module
    return DryPipe.create_pipeline(_slurm_tasks, task_conf=TaskConf(executer_type="slurm"))


def _slurm_tasks(dsl):
    for i in range(size("SLURM", 1000)):
        yield dsl.task(key=f"t-{i}").inputs(i=i).outputs(out=dsl.file("out.txt")).calls(
            independent_command("$i", "$out"))()


def chain_200(dsl):
    """N tasks, each copying its predecessor's file and appending a line to it."""
    n = size("CHAIN", 200)
    prev = dsl.task(key="c-0").inputs(i=0).outputs(out=dsl.file("out.txt")).calls(
        chain_command("$i", None, "$out"))()
    yield prev
    for i in range(1, n):
        prev = dsl.task(key=f"c-{i}").inputs(i=i, prev=prev.outputs.out).outputs(
            out=dsl.file("out.txt")).calls(chain_command("$i", "$prev", "$out"))()
        yield prev


STATIC_WIDTH = 1000


def static_upstream(i: int) -> int | None:
    """The task static_100k's task i reads from: the same column one layer up."""
    return i - STATIC_WIDTH if i >= STATIC_WIDTH else None


def static_100k(dsl):
    """N tasks known up front (no waits), in layers of STATIC_WIDTH where each task reads the
    file of one task of the previous layer, so the DAG has edges to sort, not only nodes."""
    tasks: list = []
    for i in range(size("STATIC", 100_000)):
        b = dsl.task(key=f"s-{i}").inputs(i=i)
        up = static_upstream(i)
        if up is not None:
            b = b.inputs(prev=tasks[up].outputs.out)
        t = b.outputs(out=dsl.file("out.txt")).calls(independent_command("$i", "$out"))()
        tasks.append(t)
        yield t


def remote_200():
    """independent_1000's tasks, sized by DRYPIPE_BENCH_REMOTE_N, each run on a remote host over
    SSH: TaskConf(ssh_specs=$DRYPIPE_BENCH_REMOTE_SPECS, remote_base_dir=$DRYPIPE_BENCH_REMOTE_BASE)."""
    from drypipe import DryPipe, TaskConf  # here, not at the top: the prepare floor imports this module
    conf = TaskConf(ssh_specs=os.environ["DRYPIPE_BENCH_REMOTE_SPECS"],
                    remote_base_dir=os.environ["DRYPIPE_BENCH_REMOTE_BASE"])
    return DryPipe.create_pipeline(_remote_tasks, task_conf=conf)


def _remote_tasks(dsl):
    for i in range(size("REMOTE", 200)):
        yield dsl.task(key=f"t-{i}").inputs(i=i).outputs(out=dsl.file("out.txt")).calls(
            independent_command("$i", "$out"))()


# -- the service workload (bench/service.py): many small instances of one pipeline ---------------
SERVICE_KEYS = ("s-a", "s-b", "s-c", "s-d", "s-e")


def service_expected_output() -> list[str]:
    """The lines of service_5's last file (s-e's out.txt)."""
    return ["a", "b", "a", "c", "d", "e"]


def service_5(dsl):
    """5 tasks in a diamond then a tail: a -> (b, c) -> d -> e, each writing one small file
    (b and c copy a's and append a line; d concatenates b's and c's; e copies d's)."""
    a = dsl.task(key="s-a").outputs(out=dsl.file("out.txt")).calls("echo a > $out\n")()
    yield a
    b = dsl.task(key="s-b").inputs(up=a.outputs.out).outputs(out=dsl.file("out.txt")).calls(
        "cat $up > $out; echo b >> $out\n")()
    yield b
    c = dsl.task(key="s-c").inputs(up=a.outputs.out).outputs(out=dsl.file("out.txt")).calls(
        "cat $up > $out; echo c >> $out\n")()
    yield c
    d = dsl.task(key="s-d").inputs(left=b.outputs.out, right=c.outputs.out).outputs(
        out=dsl.file("out.txt")).calls("cat $left $right > $out; echo d >> $out\n")()
    yield d
    yield dsl.task(key="s-e").inputs(up=d.outputs.out).outputs(out=dsl.file("out.txt")).calls(
        "cat $up > $out; echo e >> $out\n")()


def service_config():
    """The config generator of `drypipe service` in the service workload: service_5 for every
    folder of HOME/instances."""
    from dry_pipe.pipeline import PipelineType  # here, not at the top: the prepare floor imports this module
    yield PipelineType("bench", service_5, "instances")
