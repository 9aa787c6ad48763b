"""What a run (or a run of chosen tasks) ends with: counts, failures, held and blocked tasks."""
from __future__ import annotations

from ..state import states as S
from .graph import TaskGraph


class RunResult:
    def __init__(self, graph: TaskGraph, held: list[str], unsatisfied_waits: list[str],
                 unreachable: list[str] | None = None, generator_error: str | None = None):
        self.unreachable = unreachable or []
        self.counts = graph.counts()
        self.failed = [n for n in graph.nodes.values() if n.state in S.FAILURES]
        self.held = held
        self.unsatisfied_waits = unsatisfied_waits
        self.generator_error = generator_error
        self.total = len(graph.nodes)
        held_set = set(held)
        self.waiting = [n for n in graph.nodes.values() if n.state in (S.WAITING, S.READY)
                        and n.key not in held_set]

    @property
    def ok(self) -> bool:
        """Every task completed, except those held back by --until and their downstream."""
        if self.failed or self.unsatisfied_waits or self.unreachable or self.generator_error:
            return False
        return not self.waiting or bool(self.held)

    @property
    def all_completed(self) -> bool:
        return self.counts.get(S.COMPLETED, 0) == self.total
