"""Local task slots shared by the orchestrators of one process (`drypipe service -j N`).

Each instance the service drives has its own LocalExecutor; the pool caps the local tasks they
run together. An executor reserves slots just before a launch round (`reserve`), and tells the
pool how many tasks it really runs whenever that number may have changed (`settle`): its usage
is always recomputed from what runs, so a reservation left unused is given back at the next
settle and nothing can leak.

An executor that asked for more than it got is "hungry": when slots are freed, the pool wakes
it (a byte on its wake-up pipe, which its selector watches beside the pidfds), so it launches
at once instead of waiting for one of its own tasks to end."""
from __future__ import annotations

import threading


class SlotPool:
    def __init__(self, total: int):
        if total < 1:
            raise ValueError("a slot pool needs at least one slot")
        self.total = total
        self._used: dict[int, int] = {}  # id(executor) -> slots it runs or reserved
        self._hungry: dict[int, object] = {}  # id(executor) -> executor (has .wake())
        self._cond = threading.Condition()

    @property
    def used(self) -> int:
        with self._cond:
            return sum(self._used.values())

    def reserve(self, executor, running: int, want: int) -> int:
        """executor runs `running` tasks and would launch `want` more: how many it may."""
        with self._cond:
            self._used[id(executor)] = running
            free = self.total - sum(self._used.values())
            grant = max(0, min(want, free))
            self._used[id(executor)] = running + grant
            if grant < want:
                self._hungry[id(executor)] = executor
            else:
                self._hungry.pop(id(executor), None)
            return grant

    def settle(self, executor, running: int) -> None:
        """executor runs `running` tasks now: give back what it no longer uses."""
        with self._cond:
            old = self._used.get(id(executor), 0)
            if running:
                self._used[id(executor)] = running
            else:
                self._used.pop(id(executor), None)
            if running < old:
                self._cond.notify_all()
                for other_id, other in list(self._hungry.items()):
                    if other_id != id(executor):
                        other.wake()

    def forget(self, executor) -> None:
        """executor is closed (its instance is done or stopped)."""
        with self._cond:
            self._hungry.pop(id(executor), None)
        self.settle(executor, 0)

    def wait(self, timeout: float) -> bool:
        """Block until a slot is free (True) or timeout seconds passed (False)."""
        with self._cond:
            return self._cond.wait_for(lambda: sum(self._used.values()) < self.total, timeout)
