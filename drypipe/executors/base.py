"""The executor contract: executors start task launchers and report when they end.

Executors never change task state: the orchestrator ingests the task's state file when an
executor reports that the task's process (or job) is over."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Ended:
    """A task whose process or job is over; returncode is None when unknown (re-attached)."""
    key: str
    returncode: int | None


class Executor:
    name = "base"

    def capacity(self) -> int:
        """How many more tasks can be launched now."""
        raise NotImplementedError

    def launch(self, key: str, task_script: str, start_step: int) -> str:
        """Start the task's launcher; return its job id."""
        raise NotImplementedError

    def attach(self, key: str, job_id: str, task_script: str) -> bool:
        """Watch a task launched by an earlier orchestrator; False if it is no longer running."""
        raise NotImplementedError

    def wait(self, timeout: float | None) -> list[Ended]:
        """Block up to timeout seconds for tasks to end; return those that ended."""
        raise NotImplementedError

    @property
    def running(self) -> int:
        raise NotImplementedError

    def shutdown(self, kill: bool) -> None:
        pass
