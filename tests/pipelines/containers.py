"""Tasks in containers: image resolved in $__containers_dir (CONTAINERS_DIR env for the tests)."""
import os

from dry_pipe import DryPipe, TaskConf


@DryPipe.python_call()
def in_image(x):
    return {"y": x + 1, "where": os.environ.get("APPTAINER_CONTAINER", "host")}


def dag(dsl):
    conf = TaskConf(container="tool.sif", executer_type=os.environ.get("EXECUTER", "process"))
    yield dsl.task(key="boxed", task_conf=conf).inputs(x=41).outputs(
        y=int, where=str, seen=dsl.file("seen.txt")).calls(
        'echo "bash step in ${APPTAINER_CONTAINER:-host}" > $seen').calls(in_image)()


def missing_image(dsl):
    yield dsl.task(key="nope", task_conf=TaskConf(container="absent.sif")).calls("true")()


def pipeline():
    return DryPipe.create_pipeline(dag, containers_dir=os.environ["CONTAINERS_DIR"])


def pipeline_missing():
    return DryPipe.create_pipeline(missing_image, containers_dir=os.environ["CONTAINERS_DIR"])
