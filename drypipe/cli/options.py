"""Options shared by the commands, with the guide's aliases and environment variables."""
import click

instance_dir_option = click.option(
    "--pipeline-instance-dir", "-pid", "--instance-dir", "--instance-directory", "pipeline_instance_dir",
    envvar="DRYPIPE_PIPELINE_INSTANCE_DIR", required=True, metavar="DIR",
    type=click.Path(file_okay=False),
    help="Pipeline instance directory (env DRYPIPE_PIPELINE_INSTANCE_DIR).")

generator_option = click.option(
    "--generator", "-p", "generator", envvar="DRYPIPE_PIPELINE_GENERATOR", metavar="MODULE:FUNCTION",
    help="DAG generator, or a function returning DryPipe.create_pipeline(...) "
         "(env DRYPIPE_PIPELINE_GENERATOR).")

def _valid_key(ctx, param, value):
    from ..dsl.task import check_key
    check_key(value)  # a DryPipeError: one line naming the key, like every bad input
    return value


task_key_option = click.option("--task-key", "-k", required=True, metavar="KEY", help="Task key.",
                               callback=_valid_key)


def parse_sleep_schedule(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected seconds separated by commas, e.g. 0,1,3,5",
                                 param_hint="--sleep-schedule") from None
    if not values or any(v < 0 for v in values):
        raise click.BadParameter(f"{text!r}: expected non-negative seconds", param_hint="--sleep-schedule")
    return values
