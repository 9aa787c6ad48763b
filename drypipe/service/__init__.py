"""`drypipe service`: many instances of several pipelines driven by one long-running process.

config.py: PipelineType and the config generator; markers.py: the instance markers
(X/.drypipe/state.ready ...); service.py: the scan loop and a thread per running instance;
status.py: `drypipe status` on a service home. Importing this package is cheap."""
from .config import PipelineType

__all__ = ["PipelineType"]
