"""User-facing errors: each carries a one-line message naming the culprit."""


class DryPipeError(Exception):
    """An error caused by the user's pipeline, input or instance, reported in one line."""


class InvalidPipeline(DryPipeError):
    """The DAG generator yielded something that is not a valid pipeline."""


class GeneratorFailed(DryPipeError):
    """The user's DAG generator raised an exception."""


class InstanceError(DryPipeError):
    """The pipeline instance directory or its database is unusable."""
