"""Slurm commands: sbatch-gen, sbatch, and the array commands."""
from __future__ import annotations

import click

from .options import instance_dir_option, task_key_option


@click.command("sbatch-gen")
@instance_dir_option
@task_key_option
def sbatch_gen(pipeline_instance_dir, task_key):
    """Print the sbatch command that submits one task, without running it."""
    from ..api import Instance
    click.echo(Instance(pipeline_instance_dir).sbatch_command(task_key))


@click.command()
@instance_dir_option
@task_key_option
@click.option("--wait", is_flag=True, help="Wait for the job to end.")
def sbatch(pipeline_instance_dir, task_key, wait):
    """Submit one task as a Slurm job by hand (from its failed step, else from step 0)."""
    from ..api import Instance
    from ..scheduler.orchestrator import Orchestrator
    Instance(pipeline_instance_dir).slurm_task(task_key)
    with Orchestrator(pipeline_instance_dir) as orch:
        orch.restart_tasks([task_key])
        orch.run_tasks([task_key], wait=wait)
        n = orch.graph.nodes[task_key]
        click.echo(f"task {task_key}: {n.state_name} (job {n.job_id})")
        if wait and n.state != "completed":
            raise SystemExit(1)


@click.command("array-create-parent")
@instance_dir_option
@task_key_option
@click.option("--filter", "key_glob", default="*", show_default=True, metavar="GLOB",
              help="The ready Slurm tasks to group (by key).")
def array_create_parent(pipeline_instance_dir, task_key, key_glob):
    """Create an array parent named --task-key grouping the ready Slurm tasks matching --filter
    (run `drypipe prepare` first); submit it with array-submit.

    \b
    Example:
      drypipe array-create-parent -pid ./run1 --task-key big-array --filter 'align-*'
      drypipe array-submit -pid ./run1 --task-key big-array --limit 100
    """
    from ..scheduler import arrays
    from ..scheduler.orchestrator import Orchestrator
    with Orchestrator(pipeline_instance_dir) as orch:
        keys = arrays.create_parent(orch, task_key, key_glob)
    click.echo(f"array {task_key}: {len(keys)} tasks")


@click.command("array-submit")
@instance_dir_option
@task_key_option
@click.option("--limit", type=click.IntRange(min=1), metavar="N", help="Submit at most N children.")
def array_submit(pipeline_instance_dir, task_key, limit):
    """Submit the children of an array parent not submitted yet, as one Slurm job array."""
    from ..scheduler import arrays
    from ..scheduler.orchestrator import Orchestrator
    with Orchestrator(pipeline_instance_dir) as orch:
        ids = arrays.submit(orch, task_key, limit)
    click.echo(f"array {task_key}: submitted {len(ids)} tasks as job {ids[0].split('_')[0]}")


@click.command("restart-failed-array-tasks")
@instance_dir_option
@task_key_option
@click.option("--include-pre-launch", is_flag=True,
              help="Also restart tasks that have failed to launch (useful after scancel on an array).")
def restart_failed_array_tasks(pipeline_instance_dir, task_key, include_pre_launch):
    """Resubmit the failed children of an array parent, at their failed step."""
    from ..scheduler import arrays
    from ..scheduler.orchestrator import Orchestrator
    with Orchestrator(pipeline_instance_dir) as orch:
        ids = arrays.restart_failed(orch, task_key, include_pre_launch)
    click.echo(f"array {task_key}: resubmitted {len(ids)} tasks as job {ids[0].split('_')[0]}")


@click.command("array-rsync-list")
@instance_dir_option
@task_key_option
def array_rsync_list(pipeline_instance_dir, task_key):
    """Print the task and output dirs of an array parent's children, for rsync --files-from."""
    from ..scheduler import arrays
    click.echo("\n".join(arrays.rsync_list(pipeline_instance_dir, task_key)))
