"""The guide's `from dry_pipe.pipeline import PipelineType` (drypipe service's config)."""
from drypipe.dsl.pipeline import DryPipe, Pipeline  # noqa: F401
from drypipe.service.config import PipelineType  # noqa: F401

__all__ = ["PipelineType", "DryPipe", "Pipeline"]
