"""The parts of `drypipe service` that need no process: markers and the scan, the shared slot
pool of -j, the config generator's checks, and the one-line reason of a failed instance."""
from __future__ import annotations

import os
import threading
import time

import pytest

from drypipe.errors import DryPipeError
from drypipe.executors.slots import SlotPool
from drypipe.service import markers as M
from drypipe.service.config import PipelineType, check_type
from drypipe.service.service import failure_reason


def _dag(dsl):
    yield from ()


def test_scan_finds_ready_markers_oldest_first_and_nothing_else(tmp_path):
    for name, marker, mtime in [("b", "ready", 200), ("a", "ready", 300), ("c", "completed", 100),
                                ("d", None, 0), (".hidden", "ready", 50)]:
        (tmp_path / name / ".drypipe").mkdir(parents=True)
        if marker:
            p = tmp_path / name / ".drypipe" / f"state.{marker}"
            p.write_text("")
            os.utime(p, (mtime, mtime))
    (tmp_path / "file.txt").write_text("not a folder")
    assert [os.path.basename(d) for _, d in M.scan(str(tmp_path), "ready")] == ["b", "a"]
    assert [os.path.basename(d) for _, d in M.scan(str(tmp_path), "ready", {"b"})] == ["a"]
    assert M.scan(str(tmp_path / "missing"), "ready") == []
    assert M.current(str(tmp_path / "c")) == "completed" and M.current(str(tmp_path / "d")) is None
    assert M.move(str(tmp_path / "a"), "ready", "running") and M.current(str(tmp_path / "a")) == "running"
    assert not M.move(str(tmp_path / "a"), "ready", "running")  # no longer says ready


def test_a_scan_of_a_thousand_finished_instances_costs_milliseconds(tmp_path):
    for i in range(1000):
        (tmp_path / f"i{i}" / ".drypipe").mkdir(parents=True)
        (tmp_path / f"i{i}" / ".drypipe" / "state.completed").write_text("")
    best = min(_timed(lambda: M.scan(str(tmp_path), "ready")) for _ in range(5))
    assert best < 0.05, f"one scan took {best * 1000:.1f} ms"


def _timed(f) -> float:
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


class _Exec:
    def __init__(self):
        self.woken = threading.Event()

    def wake(self):
        self.woken.set()


def test_the_slot_pool_caps_what_its_executors_run_together():
    pool, a, b = SlotPool(3), _Exec(), _Exec()
    assert pool.reserve(a, running=0, want=2) == 2
    assert pool.reserve(b, running=0, want=5) == 1  # b is hungry: it wanted more
    assert pool.used == 3
    pool.settle(a, running=1)  # a launched only one: its unused slot goes back, b is woken
    assert b.woken.is_set() and pool.used == 2
    assert pool.reserve(b, running=1, want=4) == 1
    assert pool.reserve(a, running=1, want=1) == 0
    pool.forget(b)
    assert pool.used == 1 and pool.reserve(a, running=1, want=9) == 2


def test_a_starved_executor_waits_for_a_slot_to_be_freed():
    pool, a = SlotPool(1), _Exec()
    assert pool.reserve(a, running=0, want=1) == 1
    assert not pool.wait(0.01)
    threading.Timer(0.05, lambda: pool.settle(a, 0)).start()
    assert pool.wait(10)


@pytest.mark.parametrize("item, message", [
    ("nope", "yielded 'nope': expected PipelineType"),
    (PipelineType("a b", _dag, "x"), "pipeline type name 'a b' must be"),
    (PipelineType("t", 42, "x"), "pipeline type 't': pipeline 42 is neither a DAG generator"),
    (PipelineType("t", _dag, ""), "pipeline type 't': instances_dir '' is not a path"),
    (PipelineType("t", _dag, "."), "instances_dir is the service home itself"),
    (PipelineType("t", _dag, "x", max_running=True), "max_running True must be None or an int >= 1"),
])
def test_a_bad_pipeline_type_names_its_culprit(tmp_path, item, message):
    with pytest.raises(DryPipeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_type(item, str(tmp_path), "cfg:fn")


def test_instances_dir_is_relative_to_the_home_unless_absolute(tmp_path):
    assert check_type(PipelineType("t", _dag, "in"), str(tmp_path), "c:f").instances_dir == str(tmp_path / "in")
    assert check_type(PipelineType("t", _dag, "/data/in"), str(tmp_path), "c:f").instances_dir == "/data/in"


class _Result:
    def __init__(self, failed=(), total=3, completed=3, generator_error=None, waits=(), unreachable=()):
        self.failed, self.total, self.generator_error = list(failed), total, generator_error
        self.counts = {"completed": completed}
        self.unsatisfied_waits, self.unreachable = list(waits), list(unreachable)
        self.all_completed = completed == total


class _Node:
    def __init__(self, key, state_name, message):
        self.key, self.state_name, self.message = key, state_name, message


def test_the_reason_an_instance_failed_is_one_line_naming_tasks_and_logs():
    assert failure_reason(_Result(), "/x") is None
    r = failure_reason(_Result([_Node("align.1", "failed.2", "step 2 exited with status 3")], completed=2), "/x")
    assert r == "task align.1 failed.2 (step 2 exited with status 3), see /x/.drypipe/align.1/out.log"
    r = failure_reason(_Result(generator_error="DAG generator m:f raised KeyError: 'x'", completed=1), "/x")
    assert r == "the generator failed: DAG generator m:f raised KeyError: 'x'"
    assert failure_reason(_Result(completed=1), "/x") == "2 of 3 tasks not completed"
    assert "\n" not in failure_reason(_Result([_Node(f"t{i}", "failed.0", None) for i in range(8)]), "/x")
