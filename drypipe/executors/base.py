"""The executor contract, one for local processes, Slurm, and remote hosts (processes or Slurm
on a login node): submit a batch of task launchers, poll for what happened to them, cancel
them, and, after a crash, watch again what an earlier orchestrator submitted.

Executors never change task state: they report events (a task's process or job is over; a
task was seen at a new step), and the orchestrator feeds them to the state machine, reading
the task's own log for what it reported itself.

The shape of a batch is the backend's own (a local batch is launcher scripts, a Slurm batch is
a job array's dir, a remote batch is a host's tasks and their uploads): the scheduler has one
submission path per backend (scheduler/orchestrator.launch_round for local processes,
scheduler/slurm_tasks and scheduler/arrays for Slurm, scheduler/remote_tasks for remote hosts),
used by `run`, `restart`, `task`, `sbatch` and the `array-*` commands alike."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass


@dataclass
class Ended:
    """A task whose process or job is over; returncode is None when unknown (re-attached).
    usage: what the kernel measured when it was reaped (local launchers under the reaper:
    peak_rss bytes, cpu_user and cpu_sys seconds), for its attempt."""
    key: str
    returncode: int | None
    usage: dict | None = None


class Executor(ABC):
    name = "base"

    @property
    @abstractmethod
    def running(self) -> int:
        """How many submitted tasks are not known to be over."""

    def capacity(self) -> int:
        """How many more tasks can be submitted now (queues: unbounded)."""
        return 1 << 30

    def next_poll_in(self) -> float:
        """Seconds until poll() has something new to say (0: now)."""
        return 0.0

    @abstractmethod
    def poll(self, timeout: float = 0.0) -> list[Ended]:
        """The tasks that ended, waiting up to timeout seconds for one where the backend can
        (local processes); a polled backend answers at once, when its poll is due."""

    @abstractmethod
    def cancel(self, keys) -> None:
        """Stop these tasks (SIGTERM to a launcher's process group, scancel of a job)."""

    @abstractmethod
    def watch(self, key: str, job_id: str, *where) -> bool:
        """Recover after a crash: watch a task submitted by an earlier orchestrator; False when
        it is known to be over already."""

    def close(self) -> None:
        """Release what the executor holds (a spawner, connections); tasks keep running."""
