"""The guide's spelling: `from dry_pipe import DryPipe, TaskConf`. An alias of `drypipe`
(kept as cheap to import: python steps import it in every task process)."""
from drypipe import DryPipe, DryPipeError, Pipeline, TaskConf, __version__  # noqa: F401

__all__ = ["DryPipe", "TaskConf", "Pipeline", "DryPipeError"]


def __getattr__(name):
    import drypipe
    return getattr(drypipe, name)
