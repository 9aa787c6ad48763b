"""Commands that read an instance: list-states, status, report-execution-times, poll-task, dump-env.

They only read the DB (WAL: never blocking a running orchestrator) and the task dirs."""
from __future__ import annotations

import sys
import time

import click

from .options import instance_dir_option, task_key_option


def _instance(d):
    from ..api import Instance
    return Instance(d)


@click.command("list-states")
@instance_dir_option
@click.option("--task-key", "-k", "key_glob", metavar="GLOB", help="Only tasks whose key matches GLOB.")
@click.option("--state", metavar="STATE", help="Only tasks in STATE (waiting, ready, failed, ...).")
@click.option("--gen-rsync-list", is_flag=True,
              help="With an array parent's --task-key: print its children's dirs for rsync --files-from.")
def list_states(pipeline_instance_dir, key_glob, state, gen_rsync_list):
    """A table of tasks and their states, with counts per state. With the --task-key of an
    array parent: the states of its children.

    \b
    Example:
      drypipe list-states -pid ./run1 --task-key 'task-for-chunk.*'
    """
    from ..reports import render_states
    inst = _instance(pipeline_instance_dir)
    if key_glob and inst.is_array_parent(key_glob):
        if gen_rsync_list:
            click.echo("\n".join(inst.array_rsync_list(key_glob)))
            return
        keys = set(inst.array_children(key_glob))
        tasks = [t for t in inst.tasks(state=state) if t.key in keys]
    elif gen_rsync_list:
        raise click.UsageError("--gen-rsync-list needs the --task-key of an array parent")
    else:
        tasks = inst.tasks(state=state, key=key_glob)
    click.echo(render_states(tasks))


@click.command("report-execution-times")
@instance_dir_option
@click.option("--task-key", "-k", "task_key", metavar="KEY", help="Only this task.")
@click.option("--filter", "filter_glob", default="*", show_default=True, metavar="GLOB",
              help="Only tasks whose key matches GLOB.")
def report_execution_times(pipeline_instance_dir, task_key, filter_glob):
    """Per task and per step durations, grouped by key prefix, with totals (from the DB).

    \b
    Example:
      drypipe report-execution-times -pid ./run1 --filter 'align-*'
    """
    from ..reports import render_execution_times
    inst = _instance(pipeline_instance_dir)
    tasks = [t for t in inst.tasks(key=filter_glob) if task_key is None or t.key == task_key]
    click.echo(render_execution_times(tasks, inst.transitions()))


@click.command()
@instance_dir_option
@click.option("--watch", "-w", is_flag=True, help="Refresh every --interval seconds until Ctrl-C, "
                                                   "or until no orchestrator runs on the instance.")
@click.option("--interval", default=1.0, show_default=True, type=click.FloatRange(min=0.1),
              help="Seconds between refreshes of --watch.")
def status(pipeline_instance_dir, watch, interval):
    """Live counts per state and per key group, the running tasks (the longest running first)
    and the failed ones, done/total and an ETA from the durations observed so far; safe beside
    a running `drypipe run`.

    With --watch on a terminal the view is redrawn; otherwise (piped to a file, a log) one plain
    line per interval: `12:01:05 42/100 completed, 3 running, 1 failed, ETA 2m10s`.

    \b
    Example (in a second terminal):
      drypipe status -pid ./run1 --watch

    On the home of a `drypipe service`, one line per instance: type, folder, state, task counts.
    """
    from ..service.markers import is_service_home
    if is_service_home(pipeline_instance_dir):
        _service_status(pipeline_instance_dir, watch, interval)
        return
    from ..observe import progress
    inst = _instance(pipeline_instance_dir)
    plain = watch and not sys.stdout.isatty()
    first = True
    while True:
        pid = inst.running_orchestrator  # before the tasks: the last frame is read after the run
        p = inst.progress(time.time())
        if plain:
            if first:
                click.echo(progress.header_line(inst.instance_dir, pid))
            click.echo(progress.clock_line(p.summary, p.now))
        else:
            click.echo(("\033[H\033[J" if watch else "") + progress.status_text(p, inst.instance_dir, pid))
        sys.stdout.flush()
        first = False
        if not watch or pid is None:
            return
        time.sleep(interval)  # a display refresh, not a wait on a condition


def _service_status(home, watch, interval):
    from ..service.status import status_text
    tty = sys.stdout.isatty()
    while True:
        text = status_text(home)
        click.echo(("\033[H\033[J" if watch and tty else "") + text)
        sys.stdout.flush()
        if not watch:
            return
        time.sleep(interval)  # a display refresh, not a wait on a condition


@click.command("poll-task")
@instance_dir_option
@task_key_option
def poll_task(pipeline_instance_dir, task_key):
    """Print the state of a task, as its state file says (used to poll remote tasks)."""
    from ..api import task_state_name
    click.echo(task_state_name(pipeline_instance_dir, task_key))


@click.command("dump-env")
@instance_dir_option
@task_key_option
def dump_env(pipeline_instance_dir, task_key):
    """Print the environment of a task (its task-env.sh), for debugging."""
    from ..api import task_env_text
    click.echo(task_env_text(pipeline_instance_dir, task_key), nl=False)
