"""The `drypipe` command line: thin click commands over the library."""
from __future__ import annotations

import fnmatch
import logging
import os
import sys

import click

from ..errors import DryPipeError
from .options import generator_option, instance_dir_option, parse_sleep_schedule
from .report import ConsoleReporter, print_summary

log = logging.getLogger("drypipe")


class DryPipeGroup(click.Group):
    """Turns DryPipeError into a one-line message and exit 2 (traceback only with -v)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except DryPipeError as e:
            log.info("traceback of the error below:", exc_info=True)  # shown with -v
            click.echo(f"drypipe: error: {e}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("drypipe: interrupted", err=True)
            sys.exit(130)


@click.group(cls=DryPipeGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--v", "verbose", is_flag=True, help="Verbose: log INFO messages.")
@click.option("-vv", "--vv", "very_verbose", is_flag=True, help="Very verbose: log DEBUG messages.")
@click.option("--dry-run", is_flag=True, help="Don't run anything, print what would run (implies -v).")
@click.version_option(package_name="drypipe", prog_name="drypipe")
@click.pass_context
def cli(ctx, verbose, very_verbose, dry_run):
    """DryPipe: run pipelines written as Python DAG generators.

    \b
    Quick start:
      drypipe run --pipeline-instance-dir ./my-run --generator my_module:my_dag
      drypipe list-states -pid ./my-run
    """
    level = logging.DEBUG if very_verbose else logging.INFO if (verbose or dry_run) else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ctx.obj = {"dry_run": dry_run, "verbose": verbose or very_verbose}
    sub = ctx.invoked_subcommand
    if dry_run and sub not in DRY_RUN_AWARE and sub not in READ_ONLY:
        click.echo(f"dry run: `drypipe {sub}` would change the instance (or run a task's code); nothing done")
        ctx.exit(0)


# --dry-run: these commands compute and print what they would do, on a read-only view ...
DRY_RUN_AWARE = frozenset({"run", "prepare", "restart", "task"})
# ... these only read; every other command does nothing under --dry-run
READ_ONLY = frozenset({"list-states", "status", "report-execution-times", "poll-task", "dump-env",
                       "array-rsync-list", "trace", "dag", "why"})


def _load(generator):
    from ..dsl.pipeline import load_pipeline
    if not generator:
        raise DryPipeError("--generator is required (or set DRYPIPE_PIPELINE_GENERATOR)")
    return load_pipeline(generator)


@cli.command()
@instance_dir_option
@generator_option
@click.option("--until", metavar="PATTERN", help="Tasks whose key matches the glob PATTERN are not started.")
@click.option("--restart-failed", is_flag=True, help="Resume failed tasks at the step that failed.")
@click.option("--reset-failed", is_flag=True, help="Rerun failed tasks from step 0, output dir cleared.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=None,
              help="Local tasks run at once (default: number of CPUs).")
@click.option("--sleep-schedule", envvar="DRYPIPE_SERVICE_SLEEP_SCHEDULE", default="0,1,3,5,10,15,20",
              show_default=True, help="Polling intervals (s) for executors that must be polled "
                                      "(Slurm, SSH); local completion is detected at once.")
@click.option("--rerun-changed", "rerun_changed", is_flag=False, flag_value="*", default=None, metavar="[GLOB]",
              help="Rerun the completed tasks that are out of date (their code, inputs or TaskConf "
                   "changed; `drypipe why` says how) and everything downstream of them; with GLOB, "
                   "only the out-of-date tasks whose key matches it.")
@click.option("--quiet", "-q", is_flag=True, help="No progress display, only the summary.")
@click.pass_context
def run(ctx, pipeline_instance_dir, generator, until, restart_failed, reset_failed, jobs, sleep_schedule, quiet,
        rerun_changed):
    """Generate tasks and run the pipeline until nothing more can progress.

    Exits 0 when every task completed, 1 when tasks failed (listed with their out.log).
    Completed tasks are never rerun by themselves: those whose definition changed are listed as
    out of date, and rerun with --rerun-changed.

    \b
    Example:
      drypipe run --pipeline-instance-dir ./run1 --generator my_module:my_pipeline
      drypipe run -p my_module:my_pipeline --instance-directory=./run1
    """
    from ..scheduler import changes
    from ..scheduler.orchestrator import Orchestrator
    pipeline = _load(generator)
    if ctx.obj["dry_run"]:
        _dry_run(pipeline_instance_dir, pipeline, generator, until, restart_failed, reset_failed, rerun_changed)
        return
    reporter = ConsoleReporter(quiet=quiet)
    with Orchestrator(pipeline_instance_dir, pipeline, generator_spec=generator, max_parallel=jobs,
                      reporter=reporter, sleep_schedule=parse_sleep_schedule(sleep_schedule)) as orch:
        if restart_failed or reset_failed:
            orch.retry_failed(reset=reset_failed)
        if rerun_changed:
            rerun = changes.rerun_changed(orch, rerun_changed)
            click.echo(f"drypipe: rerunning {len(rerun)} task(s): out of date, or downstream of one", err=True)
        result = orch.run(until=until)
    print_summary(result, pipeline_instance_dir)
    if result.generator_error:  # the tasks it had yielded ran on; its error is the last line
        raise DryPipeError(result.generator_error)
    sys.exit(0 if result.ok else 1)


def _dry_run(instance_dir, pipeline, generator, until, restart_failed, reset_failed, rerun_changed=None):
    """What `run` would do, computed on a read-only view of the instance: nothing is written."""
    from ..scheduler import changes
    from ..scheduler.orchestrator import Orchestrator
    with Orchestrator(instance_dir, pipeline, generator_spec=generator, dry_run=True) as orch:
        known = set(orch.graph.nodes)
        retried = orch.retry_failed(reset=reset_failed) if (restart_failed or reset_failed) else []
        rerun = changes.rerun_changed(orch, rerun_changed) if rerun_changed else []
        counts = orch.prepare()
        new = [k for k in orch.graph.nodes if k not in known]
        ready = list(dict.fromkeys(n.key for n in orch.ready if n.state == "ready"
                                   and not (until and fnmatch.fnmatchcase(n.key, until))))
    click.echo(f"dry run (nothing written): {sum(counts.values())} tasks, {len(new)} new")
    verb = "reset (output dir cleared) and rerun" if reset_failed else "resumed at their failed step"
    for n in retried:
        click.echo(f"  would be {verb}: {n.key}")
    for n in rerun:
        why = orch.changes.rerun.get(n.key)
        click.echo(f"  would be rerun: {n.key} ({why or 'downstream of one out of date'})")
    click.echo(f"would launch now: {len(ready)}")
    for k in ready:
        click.echo(f"  {k}")


@cli.command()
@instance_dir_option
@generator_option
@click.option("--until", metavar="PATTERN", help="Tasks whose key matches PATTERN are not prepared to be run "
                                                 "by hand (their task dir is not written).")
@click.option("--sleep-schedule", envvar="DRYPIPE_SERVICE_SLEEP_SCHEDULE", default=None, hidden=True,
              help="Not used by prepare (it polls nothing); checked for the service's sake.")
@click.pass_context
def prepare(ctx, pipeline_instance_dir, generator, until, sleep_schedule):
    """Generate the tasks of the pipeline into the instance, WITHOUT running any.

    The task dir of every task that could run now is written: `.drypipe/<key>/task` can be run
    by hand.

    \b
    Example:
      drypipe prepare --pipeline-instance-dir ./run1 --generator my_module:my_pipeline
    """
    from ..scheduler.orchestrator import Orchestrator
    if sleep_schedule is not None:
        parse_sleep_schedule(sleep_schedule)
    dry = ctx.obj["dry_run"]
    with Orchestrator(pipeline_instance_dir, _load(generator), generator_spec=generator, dry_run=dry,
                      defer_links=True) as orch:
        counts = orch.prepare(until=until)
    total = sum(counts.values())
    detail = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
    click.echo(("dry run (nothing written): " if dry else "") + f"{total} tasks in {pipeline_instance_dir} ({detail})")


def _register():
    from . import inspect as _inspect
    from . import tasks as _tasks
    from . import remote as _remote
    from . import slurm as _slurm
    from . import service as _service
    from . import observe as _observe
    from . import htmlreport as _htmlreport
    from . import why as _why
    for cmd in (_remote.upload_task_inputs, _remote.upload_drypipe_for_remote_instance, _remote.remote_exec,
                _remote.fetch_remote_state, _remote.array_upload, _remote.array_submit_from_remote,
                _remote.array_watch_from_remote, _remote.array_download,
                _inspect.list_states, _inspect.report_execution_times, _inspect.status, _inspect.poll_task,
                _inspect.dump_env, _tasks.restart, _tasks.task, _tasks.call, _tasks.upgrade_drypipe,
                _slurm.sbatch_gen, _slurm.sbatch, _slurm.array_create_parent, _slurm.array_submit,
                _slurm.restart_failed_array_tasks, _slurm.array_rsync_list, _service.service,
                _observe.trace, _observe.dag, _htmlreport.report, _why.why):
        cli.add_command(cmd)


_register()


def main():
    try:
        cli(prog_name="drypipe", auto_envvar_prefix=None)
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if isinstance(e.code, str):
            print(e.code, file=sys.stderr)
    # Everything is committed and closed by now: skip the interpreter's teardown, which for a
    # large instance spends a second freeing the task graph object by object.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
