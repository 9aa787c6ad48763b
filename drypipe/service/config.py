"""The service's configuration: `PipelineType`s yielded by a config generator (`mod:fn`).

    from dry_pipe.pipeline import PipelineType

    def service_config():
        yield PipelineType("rnaseq", rnaseq_dag, "incoming/rnaseq", max_running=4)
        yield PipelineType("qc", DryPipe.create_pipeline(qc_dag), "/data/qc")

Loading it runs the user's code once, at start-up; anything wrong with it is one DryPipeError
(a one-line error, exit 2) naming the generator and the culprit."""
from __future__ import annotations

import os
import re

from ..dsl.pipeline import Pipeline, import_spec
from ..errors import DryPipeError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class PipelineType:
    """A kind of instance the service runs: `pipeline` (a DAG generator, or
    DryPipe.create_pipeline(...)) for every folder of `instances_dir` (relative to the service
    home unless absolute); at most `max_running` of them at once (None: no limit of its own)."""

    def __init__(self, name: str, pipeline, instances_dir: str, max_running: int | None = None):
        self.name = name
        self.pipeline = pipeline
        self.instances_dir = instances_dir
        self.max_running = max_running

    def __repr__(self):
        return (f"PipelineType({self.name!r}, {self.pipeline!r}, {self.instances_dir!r}, "
                f"max_running={self.max_running!r})")


class ServiceType:
    """A checked PipelineType: its Pipeline and absolute instances dir."""

    def __init__(self, name: str, pipeline: Pipeline, instances_dir: str, max_running: int | None):
        self.name = name
        self.pipeline = pipeline
        self.instances_dir = instances_dir
        self.max_running = max_running

    @property
    def generator_spec(self) -> str:
        f = self.pipeline.dag_gen
        return f"{getattr(f, '__module__', '?')}:{getattr(f, '__qualname__', '?')}"

    def to_json(self) -> dict:
        return {"name": self.name, "instances_dir": self.instances_dir, "max_running": self.max_running,
                "generator": self.generator_spec}


def load_config(spec: str, home: str) -> list[ServiceType]:
    """Import `mod:fn`, call it with no argument, check every PipelineType it yields."""
    fn = import_spec(spec, "--config-generator")
    if not callable(fn):
        raise DryPipeError(f"--config-generator {spec!r}: {spec.split(':', 1)[1]} is not a function")
    try:
        items = list(fn())
    except Exception as e:
        raise DryPipeError(f"--config-generator {spec!r} raised {type(e).__name__}: {e}") from e
    if not items:
        raise DryPipeError(f"--config-generator {spec!r} yielded no PipelineType")
    types: list[ServiceType] = []
    for item in items:
        types.append(check_type(item, home, spec))
    seen: dict[str, str] = {}
    for t in types:
        if t.name in seen:
            raise DryPipeError(f"--config-generator {spec!r}: two pipeline types are named {t.name!r}")
        seen[t.name] = t.instances_dir
    dirs = [t.instances_dir for t in types]
    for t in types:
        if dirs.count(t.instances_dir) > 1:
            raise DryPipeError(f"--config-generator {spec!r}: pipeline type {t.name!r} shares its "
                               f"instances dir {t.instances_dir} with another type")
    return types


def check_type(item, home: str, spec: str) -> ServiceType:
    where = f"--config-generator {spec!r}"
    if not isinstance(item, PipelineType):
        raise DryPipeError(f"{where} yielded {item!r}: expected PipelineType(name, pipeline, "
                           "instances_dir, max_running)")
    name = item.name
    if not isinstance(name, str) or not _NAME.match(name):
        raise DryPipeError(f"{where}: pipeline type name {name!r} must be letters, digits, '.', '_' or '-'")
    pipeline = item.pipeline
    if not isinstance(pipeline, Pipeline):
        if not callable(pipeline):
            raise DryPipeError(f"{where}: pipeline type {name!r}: pipeline {pipeline!r} is neither a DAG "
                               "generator nor DryPipe.create_pipeline(...)")
        pipeline = Pipeline(pipeline)
    d = item.instances_dir
    if not isinstance(d, (str, os.PathLike)) or not str(d):
        raise DryPipeError(f"{where}: pipeline type {name!r}: instances_dir {d!r} is not a path")
    d = os.path.normpath(os.path.join(home, os.fspath(d)))
    if d == os.path.normpath(home):
        raise DryPipeError(f"{where}: pipeline type {name!r}: instances_dir is the service home itself; "
                           "give it a folder of its own")
    m = item.max_running
    if m is not None and (isinstance(m, bool) or not isinstance(m, int) or m < 1):
        raise DryPipeError(f"{where}: pipeline type {name!r}: max_running {m!r} must be None or an int >= 1")
    return ServiceType(name, pipeline, d, m)
