"""Commands that act on tasks: restart, task, call, upgrade-drypipe."""
from __future__ import annotations

import os
import subprocess
import sys

import click

from ..errors import DryPipeError
from .options import instance_dir_option, task_key_option


@click.command()
@instance_dir_option
@task_key_option
@click.option("--at-step", type=click.IntRange(min=0), help="Restart at this step (zero based).")
@click.option("--reset", is_flag=True, help="Restart from the first step, clearing the task's output dir.")
@click.option("--wait", is_flag=True, help="Wait for the task to end (else it runs detached; the "
                                           "next `drypipe run` picks up its result).")
@click.option("--from-remote", is_flag=True, hidden=True)
@click.pass_context
def restart(ctx, pipeline_instance_dir, task_key, at_step, reset, wait, from_remote):
    """Restart a task at its last unsuccessful step (a completed task restarts from step 0).

    \b
    Example:
      drypipe restart -pid ./run1 --task-key align-3 --wait
    """
    from ..api import Instance
    if ctx.obj["dry_run"]:
        _dry_restart(pipeline_instance_dir, task_key, at_step, reset)
        return
    res = Instance(pipeline_instance_dir).restart([task_key], at_step=at_step, reset=reset, wait=wait)
    _report_one(pipeline_instance_dir, task_key, res)


@click.command()
@instance_dir_option
@task_key_option
@click.option("--wait", is_flag=True, help="Run in the foreground until the task ends (else it runs "
                                           "detached; the next `drypipe run` picks up its result).")
@click.option("--tail", is_flag=True, help="Show the task's out.log as it runs (implies --wait).")
@click.option("--by-runner", is_flag=True,
              help="Run the task's launcher in this process, as a runner (a Slurm job, a remote host) does: "
                   "no database access; the next `drypipe run` takes its run as the task's attempt.")
@click.option("--from-remote", is_flag=True,
              help="On a remote host: run the uploaded task in this copy of the instance (no database).")
@click.option("--ssh-remote-dest", metavar="USER@HOST[:PORT]:DIR",
              help="Run the task on that host, in DIR/<instance> (key: $DRYPIPE_SSH_KEY or ~/.ssh/id_*).")
@click.pass_context
def task(ctx, pipeline_instance_dir, task_key, wait, tail, by_runner, from_remote, ssh_remote_dest):
    """Run one task (from its failed step, else from step 0): detached, or with --wait in the
    foreground.

    \b
    Example:
      drypipe task -pid ./run1 --task-key t2 --wait --tail
      drypipe task -pid ./run1 --task-key t2 --ssh-remote-dest me@host.example.com:/scratch/me
    """
    if ctx.obj["dry_run"]:
        _dry_restart(pipeline_instance_dir, task_key, None, False)
        return
    if by_runner:
        from ..dsl.task import check_key
        check_key(task_key)
        script = os.path.join(pipeline_instance_dir, ".drypipe", task_key, "task")
        if not os.path.exists(script):
            raise DryPipeError(f"task {task_key!r} has no launcher in {pipeline_instance_dir} "
                               "(run `drypipe prepare` first)")
        os.execvp("bash", ["bash", script, "run"])
    if from_remote:
        script = os.path.join(pipeline_instance_dir, ".drypipe", task_key, "task")
        if not os.path.exists(script):
            raise DryPipeError(f"task {task_key!r} was not uploaded to {pipeline_instance_dir}")
        os.execvp("bash", ["bash", script, "run"])
    if ssh_remote_dest:
        _task_on_remote_dest(pipeline_instance_dir, task_key, ssh_remote_dest)
        return
    from ..api import Instance
    inst = Instance(pipeline_instance_dir)
    inst.task(task_key)  # an unknown key is an error before anything is written
    tailer = None
    if tail:
        log = os.path.join(inst.instance_dir, ".drypipe", task_key, "out.log")
        os.makedirs(os.path.dirname(log), exist_ok=True)
        open(log, "a").close()
        tailer = subprocess.Popen(["tail", "-n", "0", "-F", log], stderr=subprocess.DEVNULL)
    try:
        res = inst.restart([task_key], wait=wait or tail)
    finally:
        if tailer is not None:
            tailer.terminate()
    _report_one(pipeline_instance_dir, task_key, res)


def _dry_restart(instance_dir, key, at_step, reset):
    """What restart/task would do, on a read-only view of the instance: nothing is written."""
    from ..scheduler.orchestrator import Orchestrator
    with Orchestrator(instance_dir, dry_run=True) as orch:
        before = orch.graph.nodes[key].state_name if key in orch.graph.nodes else None
        n = orch.restart_tasks([key], at_step=at_step, reset=reset)[0]
        click.echo(f"dry run (nothing written): task {key} ({before}) would run from step {n.start_step}"
                   + (", its output dir cleared" if reset else ""))


def _task_on_remote_dest(instance_dir, key, dest):
    from ..conf import TaskConf
    from ..scheduler import remote_ops
    from ..scheduler.orchestrator import Orchestrator
    if ":" not in dest or "@" not in dest.split(":")[0]:
        raise DryPipeError(f"--ssh-remote-dest {dest!r}: expected USER@HOST:DIR or USER@HOST:PORT:DIR")
    user_host, rdir = dest.rsplit(":", 1)  # USER@HOST or USER@HOST:PORT
    ssh_key = os.environ.get("DRYPIPE_SSH_KEY") or next(
        (p for p in (os.path.expanduser(f"~/.ssh/{n}") for n in ("id_ed25519", "id_rsa", "id_ecdsa"))
         if os.path.exists(p)), os.path.expanduser("~/.ssh/id_rsa"))
    with Orchestrator(instance_dir) as orch:
        n = orch.graph.nodes.get(key)
        if n is None:
            raise DryPipeError(f"no task {key!r} in {instance_dir}")
        n.conf = TaskConf.from_dict({**n.conf.to_dict(), "ssh_specs": f"{user_host}:{ssh_key}",
                                     "remote_base_dir": rdir, "executer_type": "process"})
        orch.any_nonlocal = True
        state = remote_ops.remote_exec(orch, key, wait=True)
        message = n.message
    click.echo(f"task {key}: {state}" + (f" - {message}" if message else ""), err=True)
    if state != "completed":
        sys.exit(1)


def _report_one(instance_dir, key, res):
    from ..api import Instance
    t = Instance(instance_dir).task(key)
    if res is None:
        click.echo(f"task {key}: launched (job {t.job_id})")
        return
    click.echo(f"task {key}: {t.state_name}" + (f" - {t.message}" if t.message else ""), err=True)
    if t.state != "completed":
        click.echo(f"log: {t.out_log}", err=True)
        sys.exit(1)


@click.command()
@instance_dir_option
@task_key_option
@click.argument("module_function", metavar="MODULE:FUNCTION")
def call(pipeline_instance_dir, task_key, module_function):
    """Call a python function with a task's arguments bound (inputs, outputs, DryPipe variables);
    print what it returns. For debugging a python call outside the pipeline."""
    import importlib
    from ..runtime.pycall import bind_arguments
    from ..api import Instance
    if ":" not in module_function:
        raise click.UsageError(f"{module_function!r}: expected MODULE:FUNCTION")
    inst = Instance(pipeline_instance_dir)
    info = inst.task(task_key)
    env_file = os.path.join(info.task_dir, "task-env.sh")
    if not os.path.exists(env_file):
        raise DryPipeError(f"task {task_key!r} has not been launched yet: no environment")
    out = subprocess.run(["bash", "-c", '__pipeline_instance_dir="$1"; . "$2"; env -0',
                          "_", inst.instance_dir, env_file], capture_output=True, check=True).stdout
    env = dict(item.split("=", 1) for item in out.decode("utf-8", "surrogateescape").split("\0") if "=" in item)
    mod_name, fn_name = module_function.split(":", 1)
    code_dir = env.get("__pipeline_code_dir")
    for p in (os.getcwd(), code_dir):
        if p and p not in sys.path:
            sys.path.insert(0, p)
    from ..runtime.pycall import StepError
    try:
        module = importlib.import_module(mod_name)
    except ImportError as e:
        raise DryPipeError(f"call {module_function!r}: module {mod_name!r} not found ({e})") from e
    f = getattr(module, fn_name, None)
    if not callable(f):
        raise DryPipeError(f"call {module_function!r}: module {mod_name!r} has no function {fn_name!r}")
    os.environ.update(env)
    try:
        kwargs = bind_arguments(f, info.spec, env)
    except StepError as e:
        raise DryPipeError(f"task {task_key!r}: {e}") from e
    result = f(**kwargs)
    click.echo(repr(result))


@click.command("upgrade-drypipe")
@instance_dir_option
def upgrade_drypipe(pipeline_instance_dir):
    """Apply the database migrations of this DryPipe version to an existing instance."""
    from ..state import db
    path = db.db_path(pipeline_instance_dir)
    before = db.current_revision(path) if os.path.exists(path) else None
    db.open_db(pipeline_instance_dir, create=False, upgrade=True).dispose()
    after = db.current_revision(path)
    if before == after:
        click.echo(f"{pipeline_instance_dir}: database already at revision {after}")
    else:
        click.echo(f"{pipeline_instance_dir}: database upgraded from revision {before} to {after}")
