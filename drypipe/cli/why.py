"""`drypipe why`: why a completed task is out of date (scheduler/changes.py)."""
import click

from .options import generator_option, instance_dir_option, task_key_option


@click.command()
@instance_dir_option
@task_key_option
@generator_option
def why(pipeline_instance_dir, task_key, generator):
    """Say why a completed task is out of date, or that it is not.

    Runs the generator (the one given, else the one the instance was run with) without writing
    anything, and compares what it yields for the task with what the task last ran with: its
    code (a unified diff; a change in white space or comments only is cosmetic and does not make
    it out of date), its input values and files, its TaskConf, and its upstream tasks (the chain
    of upstream tasks that caused it).

    \b
    Example:
      drypipe why -pid ./run1 -k align.3
    """
    from ..scheduler.why import report
    for line in report(pipeline_instance_dir, generator).explain(task_key):
        click.echo(line)
