"""`drypipe report`: one self-contained HTML file about a run (also during the run)."""
from __future__ import annotations

import click

from .options import instance_dir_option


@click.command()
@instance_dir_option
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Default: DIR/report.html.")
def report(pipeline_instance_dir, output):
    """Write the HTML report of an instance: summary, timeline, resources, failures, DAG."""
    from ..observe.report_html import write_report
    click.echo(write_report(pipeline_instance_dir, output))
