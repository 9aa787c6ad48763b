"""The guide's spelling: `from dry_pipe import DryPipe, TaskConf`. An alias of `drypipe`."""
from drypipe import *  # noqa: F401,F403
from drypipe import DryPipe, TaskConf, __version__  # noqa: F401


def __getattr__(name):
    import drypipe
    return getattr(drypipe, name)
