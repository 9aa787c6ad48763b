"""`drypipe service`: drive every instance dropped into the instances dirs of a config."""
from __future__ import annotations

import logging
import os
import signal

import click

from ..errors import DryPipeError
from .options import instance_dir_option, parse_sleep_schedule


def configure_logging(log_conf: str | None, home: str) -> None:
    """--log-conf: a .json file goes to dictConfig, anything else to fileConfig. Without it,
    the service logs what it starts and ends to stderr and to HOME/.drypipe/service.log."""
    if log_conf:
        from logging import config as logging_config  # here: 10 ms of every drypipe command otherwise
        try:
            if log_conf.endswith(".json"):
                import json
                with open(log_conf) as f:
                    logging_config.dictConfig(json.load(f))
            else:
                if not os.path.isfile(log_conf):
                    raise FileNotFoundError(f"No such file: {log_conf}")
                logging_config.fileConfig(log_conf, disable_existing_loggers=False)
        except Exception as e:
            raise DryPipeError(f"--log-conf {log_conf}: {type(e).__name__}: {e}") from e
        return
    # [thread]: the instance an orchestrator's line is about (threads are named drypipe:TYPE:FOLDER)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(threadName)s]: %(message)s")
    for h in logging.getLogger().handlers:
        h.setFormatter(fmt)
    logger = logging.getLogger("drypipe.service")
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)
    os.makedirs(os.path.join(home, ".drypipe"), exist_ok=True)
    handler = logging.FileHandler(os.path.join(home, ".drypipe", "service.log"))
    handler.setFormatter(fmt)
    logging.getLogger("drypipe").addHandler(handler)


@click.command()
@instance_dir_option
@click.option("--config-generator", envvar="DRYPIPE_SERVICE_CONFIG_GENERATOR", metavar="MODULE:FUNCTION",
              help="A function that yields dry_pipe.pipeline.PipelineType objects "
                   "(env DRYPIPE_SERVICE_CONFIG_GENERATOR).")
@click.option("--sleep-schedule", envvar="DRYPIPE_SERVICE_SLEEP_SCHEDULE", default="0,1,3,5,10,15,20",
              show_default=True, help="Seconds between scans of the instances dirs: the first after a "
                                      "scan that found work, one step further after each idle scan "
                                      "(env DRYPIPE_SERVICE_SLEEP_SCHEDULE). Also paces Slurm and SSH polls.")
@click.option("--log-conf", envvar="DRYPIPE_LOGGING_CONF", metavar="FILE", type=click.Path(dir_okay=False),
              help="Logging configuration: a .json file for logging.config.dictConfig, any other for "
                   "fileConfig (env DRYPIPE_LOGGING_CONF). Default: stderr and HOME/.drypipe/service.log.")
@click.option("-j", "--jobs", envvar="DRYPIPE_SERVICE_JOBS", type=click.IntRange(min=1), default=None,
              help="Local tasks run at once across all instances (default: number of CPUs; "
                   "Slurm and remote tasks are not counted; env DRYPIPE_SERVICE_JOBS).")
def service(pipeline_instance_dir, config_generator, sleep_schedule, log_conf, jobs):
    """Run as a service: start an instance for every folder dropped with its marker written.

    The service's home is --pipeline-instance-dir (its lock, service.json and log live in
    HOME/.drypipe). Every PipelineType the config generator yields names a pipeline and its
    instances dir; a folder X of it runs when X/.drypipe/state.ready exists (write it last).
    The marker becomes state.running, then state.completed or state.failed (the reason in
    X/.drypipe/instance.log); rename state.failed to state.ready to retry the failed tasks.

    SIGTERM or Ctrl-C: stop launching and exit 0; running tasks keep running, and the next
    service re-attaches to them.

    \b
    Example:
      drypipe service -pid ./service-home --config-generator my_config:service_config
      drypipe status -pid ./service-home
    """
    from ..service.config import load_config
    from ..service.service import Service
    if not config_generator:
        raise DryPipeError("--config-generator is required (or set DRYPIPE_SERVICE_CONFIG_GENERATOR)")
    schedule = parse_sleep_schedule(sleep_schedule)
    home = os.path.abspath(pipeline_instance_dir)
    types = load_config(config_generator, home)
    configure_logging(log_conf, home)
    svc = Service(home, types, jobs=jobs, sleep_schedule=schedule)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: svc.request_stop())
    svc.run()
    click.echo("drypipe service: stopped", err=True)
