"""DryPipe: pipelines as Python generators, with the state of each instance in SQLite.

Importing this package is cheap (no SQLAlchemy): task processes import it to run python calls.
"""
from .conf import TaskConf
from .dsl.pipeline import DryPipe, Pipeline
from .errors import DryPipeError

__version__ = "0.1.0"
__all__ = ["DryPipe", "TaskConf", "Pipeline", "DryPipeError", "Instance", "PipelineType"]


def __getattr__(name):
    if name == "Instance":
        from .api import Instance
        return Instance
    if name == "PipelineType":
        from .service.config import PipelineType
        return PipelineType
    raise AttributeError(name)
