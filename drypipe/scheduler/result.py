"""What a run (or a run of chosen tasks) ends with: counts, failures, held and blocked tasks."""
from __future__ import annotations

from ..state import states as S
from .graph import TaskGraph


class RunResult:
    def __init__(self, graph: TaskGraph, held: list[str], unsatisfied_waits: list[str],
                 unreachable: list[str] | None = None, generator_error: str | None = None,
                 out_of_date: dict | None = None):
        self.unreachable = unreachable or []
        # completed tasks whose definition changed (not rerun): (key, first reason)
        self.out_of_date = [(k, why.reason) for k, why in (out_of_date or {}).items()
                            if graph.state_of(k) == S.COMPLETED]
        self.counts = graph.counts()
        self.failed = [n for n in graph.nodes.values() if n.state in S.FAILURES]
        self.held = held
        self.unsatisfied_waits = unsatisfied_waits
        self.generator_error = generator_error
        self.stopped = False  # run() ended on its stop event, tasks still running
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


def unsatisfied_waits(orch) -> list[str]:
    """Waits that nothing can satisfy: reported only when no task failed (else a wait may
    just be downstream of the failure)."""
    if orch.generator_error or any(n.state in S.FAILURES for n in orch.graph.nodes.values()):
        return []
    out = []
    for (kind, items), (need, satisfiable) in zip(orch.blocked_waits, orch.glob_waits):
        failed = [k for k in need if orch.graph.state_of(k) in S.FAILURES]
        if failed:
            continue  # reported as failures
        if kind == "keys":
            unknown = [k for k in items if not orch.graph.is_known(k)]
            if unknown:
                out.append(f"dsl.wait_for_tasks waits for {', '.join(map(repr, unknown))}, "
                           "which the generator never yields")
        elif not satisfiable:
            empty = [g for g in items if not orch.graph.keys_matching(g)]
            out.append(f"dsl.wait_for_matching_tasks waits for {', '.join(map(repr, empty))}, "
                       "which match no task")
    return out


class NullReporter:
    def started(self, orch): pass
    def generated(self, orch, n): pass
    def progress(self, orch): pass
    def task_ended(self, orch, node): pass
    def finished(self, orch, result): pass
