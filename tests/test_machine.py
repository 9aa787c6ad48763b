"""The state machine's table on its own: what each event does, what it refuses, and replay."""
import itertools

import pytest

from drypipe.state import machine as M
from drypipe.state import states as S


class Task:
    def __init__(self, state=S.READY, step=None):
        self.key, self.state, self.step = "k", state, step
        self.launched_at = self.started_at = self.ended_at = self.message = None
        self.start_step = 0
        self.retry = 0


def record_into(rows):
    return lambda t, state, step, at: rows.append((state, step, at))


def test_a_full_attempt_records_each_transition_with_its_own_time():
    t, rows = Task(), []
    rec = record_into(rows)
    M.fire(t, "launch", 10.0, rec)
    M.fire(t, "step-started", 11.0, rec, step=0)
    M.fire(t, "step-started", 12.5, rec, step=1)
    M.fire(t, "completed", 14.0, rec)
    assert rows == [("launched", None, 10.0), ("step-started", 0, 11.0), ("step-started", 1, 12.5),
                    ("completed", None, 14.0)]
    assert (t.launched_at, t.started_at, t.ended_at) == (10.0, 11.0, 14.0)
    assert M.replay([(s, n) for s, n, _ in rows]) == "completed"


def test_a_failure_keeps_its_step_and_message_and_restart_resumes_there():
    t, rows = Task(), []
    rec = record_into(rows)
    M.fire(t, "launch", 1.0, rec)
    M.fire(t, "step-started", 2.0, rec, step=2)
    M.fire(t, "failed", 3.0, rec, message="step 2 exited with status 1")
    assert (t.state, t.step, t.message) == (S.FAILED, 2, "step 2 exited with status 1")
    M.fire(t, "restart", 4.0, rec)
    assert (t.state, t.start_step, t.message) == (S.READY, 2, None)


@pytest.mark.parametrize("event,state", [
    (e, s) for e, s in itertools.product(M.EVENTS, S.ALL) if s not in M.TABLE[e][0]])
def test_every_event_outside_its_sources_raises(event, state):
    t = Task(state, 0 if state in S.WITH_STEP else None)
    with pytest.raises(M.IllegalTransition):
        M.fire(t, event, 1.0, lambda *a: pytest.fail("recorded an illegal transition"), step=1)
    assert t.state == state


def test_killed_is_never_retried_automatically_but_can_be_restarted():
    t = Task(S.KILLED, 1)
    with pytest.raises(M.IllegalTransition):
        M.fire(t, "retry", 1.0, lambda *a: None)
    M.fire(t, "restart", 1.0, lambda *a: None)
    assert (t.state, t.start_step) == (S.READY, 1)


def test_steps_only_go_forward():
    t = Task(S.STEP_STARTED, 2)
    with pytest.raises(M.IllegalTransition):
        M.fire(t, "step-started", 1.0, lambda *a: None, step=2)
    with pytest.raises(M.IllegalTransition):
        M.replay([(S.LAUNCHED, None), (S.STEP_STARTED, 1), (S.STEP_STARTED, 0)])


def test_reset_and_restart_at_step_go_back_to_waiting_when_an_upstream_is_not_completed():
    t = Task(S.COMPLETED)
    M.fire(t, "restart-at-step", 1.0, lambda *a: None, step=1, waiting=True)
    assert (t.state, t.start_step) == (S.WAITING, 1)
    t = Task(S.FAILED, 3)
    M.fire(t, "reset", 1.0, lambda *a: None)
    assert (t.state, t.start_step) == (S.READY, 0)


def test_replay_refuses_what_no_event_allows():
    with pytest.raises(M.IllegalTransition):
        M.replay([(S.LAUNCHED, None), (S.COMPLETED, None), (S.LAUNCHED, None)])  # completed -> launched
    with pytest.raises(M.IllegalTransition):
        M.replay([(S.COMPLETED, None)])  # never launched
    assert M.replay([(S.READY, None), (S.LAUNCHED, None), (S.KILLED, 0), (S.READY, None)]) == "ready"


def test_a_task_can_report_only_running_states_and_endings():
    assert M.event_for_report("failed") == "failed"
    with pytest.raises(ValueError):
        M.event_for_report("ready")


def test_retry_counts_automatic_retries_and_a_person_restarting_resets_it():
    t, rec = Task(), (lambda *a: None)
    for expected in (1, 2):
        M.fire(t, "launch", 1.0, rec)
        M.fire(t, "failed", 2.0, rec, step=0)
        M.fire(t, "retry", 3.0, rec, step=0)
        assert (t.state, t.retry) == (S.READY, expected)
    M.fire(t, "launch", 4.0, rec)
    M.fire(t, "timed-out", 5.0, rec, step=0)
    M.fire(t, "restart", 6.0, rec)
    assert t.retry == 0
    M.fire(t, "launch", 7.0, rec)
    M.fire(t, "killed", 8.0, rec, step=0)
    with pytest.raises(M.IllegalTransition):
        M.fire(t, "retry", 9.0, rec)  # a person cancelled it: never retried
