"""The DryPipe DSL: what DAG generators use to declare tasks and their dependencies."""
from .builder import DAGBuilder, Matcher, SubPipeline
from .pipeline import DryPipe, Generation, Pipeline, generate, load_pipeline
from .task import OutputRef, Task, TaskBuilder
from .values import File, FileHandle, FileSet, GlobExpression, Val, Var

__all__ = ["DAGBuilder", "Matcher", "SubPipeline", "DryPipe", "Generation", "Pipeline", "generate",
           "load_pipeline", "OutputRef", "Task", "TaskBuilder", "File", "FileHandle", "FileSet",
           "GlobExpression", "Val", "Var"]
