"""Pipelines mixing local tasks and tasks on the test sshd's host (see tests/test_remote.py).

The remote TaskConf comes from env vars (REMOTE_SPECS, REMOTE_BASE, REMOTE_PYTHON) read when
the generator runs, not at import: python steps import this module on the remote host."""
import os

from dry_pipe import DryPipe, TaskConf


def remote():
    return TaskConf(ssh_specs=os.environ["REMOTE_SPECS"], remote_base_dir=os.environ["REMOTE_BASE"],
                    python_bin=os.environ.get("REMOTE_PYTHON") or None)


@DryPipe.python_call()
def remote_py(x, f):
    import getpass
    return {"who": getpass.getuser(), "n": x + len(open(f).read())}


def mixed(dsl):
    a = dsl.task(key="local-a").outputs(f=dsl.file("a.txt"), x=int).calls('echo hello > $f; export x=7')()
    yield a
    b = dsl.task(key="remote-b", task_conf=remote()).inputs(f=a.outputs.f, x=a.outputs.x).outputs(
        g=dsl.file("b.txt"), y=int).calls(
        'echo "$(whoami) saw $(cat $f) x=$x in $__pipeline_instance_dir" > $g; export y=$(( x * 2 ))\n'
        '[[ ! -r $LOCAL_INSTANCE ]] || { echo "the local instance is readable here!"; exit 9; }')()
    yield b
    c = dsl.task(key="remote-py", task_conf=remote()).inputs(x=b.outputs.y, f=b.outputs.g).outputs(
        who=str, n=int).calls(remote_py)()
    yield c
    yield dsl.task(key="local-d").inputs(g=b.outputs.g, n=c.outputs.n, who=c.outputs.who).outputs(
        h=dsl.file("d.txt")).calls('cat $g > $h; echo "n=$n who=$who" >> $h')()


def sleepers(dsl):
    for i in range(int(os.environ.get("N_SLEEPERS", "4"))):
        yield dsl.task(key=f"sleep-{i}", task_conf=remote()).inputs(i=i).outputs(o=dsl.file("o.txt")).calls(
            'echo "$__task_key $$" >> "$HOME/executions.log"; sleep "${SLEEP_FOR:-3}"; echo $i > $o')()


def one_remote(dsl):
    yield dsl.task(key="only-remote", task_conf=remote()).outputs(o=dsl.file("o.txt")).calls("echo hi > $o")()


def one_remote_python(dsl):
    yield dsl.task(key="remote-py", task_conf=remote()).inputs(x=1, f=dsl.file("in.txt")).outputs(
        who=str, n=int).calls(remote_py)()


def many(dsl):
    for i in range(int(os.environ.get("N_TASKS", "200"))):
        yield dsl.task(key=f"r-{i}", task_conf=remote()).inputs(i=i).outputs(o=dsl.file("o.txt")).calls(
            "echo $i > $o")()


def in_container(dsl):
    """A remote task in a container resolved in remote_containers_dir (REMOTE_CONTAINERS_DIR); the
    host's PATH and the test double's log given by REMOTE_PATH and REMOTE_DOUBLE_LOG."""
    conf = TaskConf(ssh_specs=os.environ["REMOTE_SPECS"], remote_base_dir=os.environ["REMOTE_BASE"],
                    container="tool.sif", remote_containers_dir=os.environ["REMOTE_CONTAINERS_DIR"],
                    extra_env={"PATH": os.environ["REMOTE_PATH"],
                               "APPTAINER_DOUBLE_LOG": os.environ["REMOTE_DOUBLE_LOG"]})
    yield dsl.task(key="boxed", task_conf=conf).outputs(o=dsl.file("o.txt")).calls(
        'echo "in ${APPTAINER_CONTAINER:-host}" > $o')()


def remote_script(dsl):
    yield dsl.task(key="scripted", task_conf=remote()).outputs(o=dsl.file("o.txt")).calls("remote-step.sh")()
