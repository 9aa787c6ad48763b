"""`drypipe trace` and `drypipe dag`: what ran (one row per attempt) and the DAG, from the DB."""
from __future__ import annotations

import click

from .options import instance_dir_option


@click.command()
@instance_dir_option
@click.option("--format", "fmt", type=click.Choice(["tsv", "json"]), default="tsv", show_default=True,
              help="tsv: a header line, tab-separated values, `-` when unknown; json: a list of objects.")
def trace(pipeline_instance_dir, fmt):
    """One row per task attempt, with Nextflow's trace columns: task_id hash native_id name
    status exit submit start complete duration realtime %cpu peak_rss rchar wchar attempt
    workdir (times ISO-8601 UTC, durations in ms, memory in bytes; `-` or null when unknown).

    \b
    Example:
      drypipe trace -pid ./run1 > trace.tsv
      drypipe trace -pid ./run1 --format json
    """
    from ..observe.trace import trace as trace_text
    click.echo(trace_text(pipeline_instance_dir, fmt), nl=False)


@click.command()
@instance_dir_option
@click.option("--format", "fmt", type=click.Choice(["mermaid"]), default="mermaid", show_default=True,
              help="mermaid: a flowchart (the only format).")
@click.option("--group", is_flag=True,
              help="One node per key pattern, for DAGs of thousands of tasks: numbers after "
                   "a '.', '-' or '_' become '*' (task-for-chunk.12 -> task-for-chunk.*).")
def dag(pipeline_instance_dir, fmt, group):
    """The DAG as a mermaid flowchart: a node per task, an edge per output a task produces and
    another consumes, labelled with the variable and its type or the file name. Read from the
    database (the tasks generated so far); paste it in a ```mermaid block or mermaid.live.

    \b
    Example:
      drypipe dag -pid ./run1 > dag.mmd
      drypipe dag -pid ./run1 --group
    """
    from ..observe.dag import mermaid
    click.echo(mermaid(pipeline_instance_dir, group=group))
