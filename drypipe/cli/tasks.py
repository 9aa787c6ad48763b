"""Commands that act on tasks: restart, task, call, upgrade-drypipe."""
from __future__ import annotations

import os
import subprocess
import sys

import click

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
    if by_runner or from_remote:
        from ..api import task_launcher
        script = task_launcher(pipeline_instance_dir, task_key, uploaded=not by_runner)
        os.execvp("bash", ["bash", script, "run"])
    if ssh_remote_dest:
        _task_on_remote_dest(pipeline_instance_dir, task_key, ssh_remote_dest)
        return
    from ..api import Instance
    inst = Instance(pipeline_instance_dir)
    info = inst.task(task_key)  # an unknown key is an error before anything is written
    tailer = None
    if tail:
        log = info.out_log
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
    from ..scheduler import remote_ops
    from ..scheduler.orchestrator import Orchestrator
    remote_ops.parse_remote_dest(dest)  # a malformed dest is an error before the instance is opened
    with Orchestrator(instance_dir) as orch:
        state = remote_ops.exec_at_remote_dest(orch, key, dest, wait=True)
        message = orch.graph.nodes[key].message
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
    from ..api import Instance
    if ":" not in module_function:
        raise click.UsageError(f"{module_function!r}: expected MODULE:FUNCTION")
    result = Instance(pipeline_instance_dir).call(task_key, module_function)
    click.echo(repr(result))


@click.command("upgrade-drypipe")
@instance_dir_option
def upgrade_drypipe(pipeline_instance_dir):
    """Apply the database migrations of this DryPipe version to an existing instance."""
    from ..api import upgrade_instance
    before, after = upgrade_instance(pipeline_instance_dir)
    if before == after:
        click.echo(f"{pipeline_instance_dir}: database already at revision {after}")
    else:
        click.echo(f"{pipeline_instance_dir}: database upgraded from revision {before} to {after}")
