"""Pipelines for the remote commands by hand (tests/test_remote_commands.py), on the test sshd's
host (and its Slurm cluster).

The remote TaskConf comes from env vars read when the generator runs (REMOTE_SPECS, REMOTE_BASE,
REMOTE_PYTHON; N_ARRAY for the array pipeline; IN_FILE for `inputs`), not at import: python
steps import this module on the remote host."""
import json
import os

from dry_pipe import DryPipe, TaskConf


def remote(**extra):
    return TaskConf(ssh_specs=os.environ["REMOTE_SPECS"], remote_base_dir=os.environ["REMOTE_BASE"],
                    python_bin=os.environ.get("REMOTE_PYTHON") or None, **extra)


@DryPipe.python_call()
def remote_count(f, n):
    import getpass
    return {"who": getpass.getuser(), "total": n + len(open(f, "rb").read())}


def inputs(dsl):
    """A bash task reading an input file of the instance dir, and a python task (the python
    step needs DryPipe and this module on the remote host)."""
    f = dsl.file(os.environ.get("IN_FILE", "in.txt"))
    yield dsl.task(key="rb", task_conf=remote()).inputs(f=f, x=5).outputs(o=dsl.file("o.txt"), y=int).calls(
        'echo "$(whoami) read $(cat "$f") in $PWD" > "$o"; export y=$(( x * 3 ))')()
    yield dsl.task(key="rpy", task_conf=remote()).inputs(f=f, n=2).outputs(who=str, total=int).calls(
        remote_count)()


def sleeper(dsl):
    yield dsl.task(key="rs", task_conf=remote()).inputs(t=os.environ.get("SLEEP_FOR", "3")).outputs(
        o=dsl.file("o.txt")).calls('sleep "$t"; echo slept > $o')()


def values(dsl):
    """Each value of values.json (in the instance dir) through a remote bash task and back as
    an output variable, and a downstream local task comparing what came back."""
    with open(dsl.file_in_pipeline_instance_dir("values.json"), encoding="utf-8") as fh:
        vals = json.load(fh)
    for i, v in enumerate(vals):
        r = dsl.task(key=f"rv-{i}", task_conf=remote()).inputs(v=v).outputs(out=dsl.file("out.txt"), r=str).calls(
            """printf '%s' "$v" > "$out"
export r="$v"
""")()
        yield r
        yield dsl.task(key=f"lv-{i}").inputs(a=r.outputs.r, f=r.outputs.out).outputs(
            out=dsl.file("out.txt")).calls('printf \'%s\' "$a" > "$out"; cmp -s "$f" "$out" || exit 3')()


def slurm_array(dsl):
    """N_ARRAY remote Slurm tasks (for array-create-parent and the array-*-remote commands), and a
    local task that no array filter of the tests matches."""
    conf = remote(executer_type="slurm")
    for i in range(int(os.environ.get("N_ARRAY", "3"))):
        yield dsl.task(key=f"arr-{i}", task_conf=conf).inputs(i=i).outputs(o=dsl.file("o.txt"), sq=int).calls(
            'echo "$i on ${SLURM_JOB_ID:-no-slurm} $(whoami)" > $o; export sq=$(( i * i ))')()
    yield dsl.task(key="other").outputs(o=dsl.file("o.txt")).calls("echo other > $o")()


def big_input(dsl):
    """One remote bash task whose input file (in.bin, in the instance dir) is uploaded."""
    yield dsl.task(key="big", task_conf=remote()).inputs(f=dsl.file("in.bin")).outputs(
        n=int).calls('export n=$(wc -c < "$f")')()


def _local_task(dsl):
    return dsl.task(key="lt").inputs(f=dsl.file("in.txt"), x=4).outputs(o=dsl.file("o.txt"), y=int).calls(
        'echo "$(whoami) $(cat "$f") $PWD" > "$o"; export y=$(( x + 1 ))')()


def all_local(dsl):
    """For `task --ssh-remote-dest`: a local task, and no remote or Slurm task at all."""
    yield _local_task(dsl)


def local_and_remote(dsl):
    """For `task --ssh-remote-dest`: the same local task, next to a remote one."""
    yield _local_task(dsl)
    yield dsl.task(key="rt", task_conf=remote()).outputs(o=dsl.file("o.txt")).calls('echo hi > "$o"')()
