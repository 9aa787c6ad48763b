"""Remote commands by hand: upload-task-inputs, upload-drypipe-for-remote-instance, remote-exec,
fetch-remote-state, and the array-*-remote commands. `drypipe run` does all of this by itself."""
from __future__ import annotations

import click

from .options import instance_dir_option, task_key_option


def _orch(d):
    from ..scheduler.orchestrator import Orchestrator
    return Orchestrator(d)


@click.command("upload-task-inputs")
@instance_dir_option
@task_key_option
def upload_task_inputs(pipeline_instance_dir, task_key):
    """Send a remote task's launcher and input files to its host (rsync)."""
    from ..scheduler import remote_ops
    with _orch(pipeline_instance_dir) as orch:
        paths = remote_ops.upload_task_inputs(orch, task_key)
    click.echo(f"task {task_key}: uploaded {len(paths)} paths")


@click.command("upload-drypipe-for-remote-instance")
@instance_dir_option
@task_key_option
def upload_drypipe_for_remote_instance(pipeline_instance_dir, task_key):
    """Send DryPipe and the pipeline's code to a remote task's host (for python steps)."""
    from ..scheduler import remote_ops
    with _orch(pipeline_instance_dir) as orch:
        where = remote_ops.upload_drypipe(orch, task_key)
    click.echo(f"task {task_key}: DryPipe and pipeline code in {where}")


@click.command("remote-exec")
@instance_dir_option
@task_key_option
@click.option("--wait", is_flag=True, help="Wait for the task to end (and download it).")
def remote_exec(pipeline_instance_dir, task_key, wait):
    """Start a remote task on its host (uploading what it needs)."""
    from ..scheduler import remote_ops
    with _orch(pipeline_instance_dir) as orch:
        state = remote_ops.remote_exec(orch, task_key, wait)
    click.echo(f"task {task_key}: {state}")
    if wait and state != "completed":
        raise SystemExit(1)


@click.command("fetch-remote-state")
@instance_dir_option
@task_key_option
@click.option("--wait", is_flag=True, help="Poll until the task has ended.")
def fetch_remote_state(pipeline_instance_dir, task_key, wait):
    """Fetch a remote task's state into the instance (downloading it once it has ended)."""
    from ..scheduler import remote_ops
    with _orch(pipeline_instance_dir) as orch:
        state = remote_ops.fetch_remote_state(orch, task_key, wait)
    click.echo(f"task {task_key}: {state}")
    if wait and state != "completed":
        raise SystemExit(1)


@click.command("array-upload")
@instance_dir_option
@task_key_option
def array_upload(pipeline_instance_dir, task_key):
    """Upload an array parent's children to their remote Slurm login node."""
    from ..scheduler import remote_ops
    with _orch(pipeline_instance_dir) as orch:
        n = remote_ops.array_upload(orch, task_key)
    click.echo(f"array {task_key}: uploaded {n} tasks")


@click.command("array-submit-from-remote")
@instance_dir_option
@task_key_option
@click.option("--wait", is_flag=True, help="Then watch until every child has ended.")
def array_submit_from_remote(pipeline_instance_dir, task_key, wait):
    """Submit an array parent with sbatch on its remote Slurm login node."""
    from ..scheduler import remote_ops
    with _orch(pipeline_instance_dir) as orch:
        ids = remote_ops.array_submit_from_remote(orch, task_key)
        click.echo(f"array {task_key}: submitted {len(ids)} tasks as job {ids[0].split('_')[0]}")
        if wait:
            click.echo(_counts(remote_ops.array_watch_from_remote(orch, task_key, True)))


@click.command("array-watch-from-remote")
@instance_dir_option
@task_key_option
@click.option("--wait", is_flag=True, help="Poll until every child has ended.")
def array_watch_from_remote(pipeline_instance_dir, task_key, wait):
    """Poll the children of an array parent on their remote host; fetch those that ended."""
    from ..scheduler import remote_ops
    with _orch(pipeline_instance_dir) as orch:
        click.echo(_counts(remote_ops.array_watch_from_remote(orch, task_key, wait)))


@click.command("array-download")
@instance_dir_option
@task_key_option
def array_download(pipeline_instance_dir, task_key):
    """Download the task and output dirs of all children of an array parent (rsync)."""
    from ..scheduler import remote_ops
    with _orch(pipeline_instance_dir) as orch:
        n = remote_ops.array_download(orch, task_key)
    click.echo(f"array {task_key}: downloaded {n} tasks")


def _counts(counts):
    return ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
