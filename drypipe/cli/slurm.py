"""Slurm commands: sbatch-gen, sbatch (and, later, the array commands)."""
from __future__ import annotations



import click

from .options import instance_dir_option, task_key_option


def _slurm_task(instance_dir, key):
    from ..api import Instance
    from ..errors import DryPipeError
    inst = Instance(instance_dir)
    t = inst.task(key)
    if t.executer_type != "slurm":
        raise DryPipeError(f"task {key!r} is not a Slurm task (executer_type={t.executer_type!r})")
    return inst, t


@click.command("sbatch-gen")
@instance_dir_option
@task_key_option
def sbatch_gen(pipeline_instance_dir, task_key):
    """Print the sbatch command that submits one task, without running it."""
    from ..conf import TaskConf
    from ..executors.slurm import SlurmExecutor
    from ..executors.slurm_text import shell_command
    import json
    inst, t = _slurm_task(pipeline_instance_dir, task_key)
    conf = TaskConf.from_dict(json.loads(_conf_json(inst, task_key)))
    argv = SlurmExecutor(inst.instance_dir).sbatch_argv_for_task(conf, task_key)
    click.echo(f"cd {shell_command([inst.instance_dir])} && {shell_command(argv)}")


def _conf_json(inst, key):
    from sqlalchemy import select
    from ..state.models import task_conf_table, task_table
    with inst.engine.connect() as c:
        return c.execute(select(task_conf_table.c.json).join(task_table, task_table.c.conf_id == task_conf_table.c.id)
                         .where(task_table.c.key == key)).scalar_one()


@click.command()
@instance_dir_option
@task_key_option
@click.option("--wait", is_flag=True, help="Wait for the job to end.")
def sbatch(pipeline_instance_dir, task_key, wait):
    """Submit one task as a Slurm job by hand (from its failed step, else from step 0)."""
    from ..scheduler.orchestrator import Orchestrator
    _slurm_task(pipeline_instance_dir, task_key)
    with Orchestrator(pipeline_instance_dir) as orch:
        orch.restart_tasks([task_key])
        orch.run_tasks([task_key], wait=wait)
        n = orch.graph.nodes[task_key]
        click.echo(f"task {task_key}: {n.state_name} (job {n.job_id})")
        if wait and n.state != "completed":
            raise SystemExit(1)

