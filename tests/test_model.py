"""Model-based test of the state machine, through the real CLI on a real instance.

Hypothesis drives random sequences of: runs to the end, runs SIGKILLed at a random moment, a
task killed while a run watches it (or while none does), restarts (at a step, or reset),
--restart-failed and --reset-failed, dry runs, readers, steps made to fail or to pass again,
and a changed generator. After every step it checks what must always hold:

- for every task not running, its one state file names the database's state;
- each task's `transitions` rows replay, through the state machine's table, to its state;
- every step execution falls inside one attempt (between a `launched` row and that attempt's
  ending), and no step runs twice in one attempt: nothing ran twice;
- no attempt started before its upstream tasks' latest completion.

At the end, with every failure cause removed, runs must complete every task: nothing is lost.
`make test` runs a few examples; `make torture` runs many (DRYPIPE_MODEL_EXAMPLES)."""
import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from conftest import REPO, wait_until
from drypipe.state import machine
from drypipe.state import states as S
from tests.pipelines.model import KEYS, STEPS, UPSTREAM

GEN = "tests.pipelines.model:dag"
EXAMPLES = int(os.environ.get("DRYPIPE_MODEL_EXAMPLES", "6"))
STEPS_PER_EXAMPLE = int(os.environ.get("DRYPIPE_MODEL_STEPS", "8"))
TOTALS = {"twice": 0, "lost": 0, "examples": 0, "kills": 0}


def cli(inst, *args, timeout=120):
    return subprocess.run([sys.executable, "-m", "drypipe", *args[:1], "-pid", str(inst), *args[1:]],
                          cwd=REPO, capture_output=True, text=True, timeout=timeout)


def start(inst, *extra):
    return subprocess.Popen([sys.executable, "-m", "drypipe", "run", "-q", "-pid", str(inst), "--generator", GEN,
                             *extra], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def db_rows(inst, query):
    path = inst / ".drypipe" / "drypipe.db"
    if not path.exists():
        return []
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return con.execute(query).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        con.close()


def state_files(inst, key):
    d = inst / ".drypipe" / key
    return sorted(p.name[len("state."):] for p in d.iterdir() if p.name.startswith("state.")) if d.is_dir() else None


def executions(inst):
    p = inst / "executions.txt"
    out = []
    for line in (p.read_text().splitlines() if p.exists() else []):
        key, step, at = line.split()
        out.append((key, int(step), float(at)))
    return out


def snapshot(inst):
    out = {}
    for root, dirs, files in os.walk(inst):
        for name in files:
            if name.endswith(("-wal", "-shm")):
                continue
            p = os.path.join(root, name)
            with open(p, "rb") as f:
                out[os.path.relpath(p, inst)] = (os.stat(p).st_mtime_ns, hashlib.sha1(f.read()).hexdigest())
        out.update({os.path.relpath(os.path.join(root, d), inst): "dir" for d in dirs})
    return out


class DryPipeModel(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        import tempfile
        self.tmp = tempfile.TemporaryDirectory(prefix="drypipe-model-")
        self.inst = __import__("pathlib").Path(self.tmp.name) / "inst"
        TOTALS["examples"] += 1
        if os.environ.get("DRYPIPE_MODEL_PROGRESS"):  # a long run (make torture) can be watched
            with open(os.environ["DRYPIPE_MODEL_PROGRESS"], "a") as f:
                f.write(f"{time.time():.0f} example {TOTALS['examples']} kills {TOTALS['kills']}\n")

    # -- rules ---------------------------------------------------------------------------------
    @rule(flag=st.sampled_from([[], ["--restart-failed"], ["--reset-failed"]]))
    def run_to_the_end(self, flag):
        p = start(self.inst, *flag)
        _, err = p.communicate(timeout=120)
        assert p.returncode in (0, 1), err
        assert "Traceback" not in err, err

    @rule(delay=st.floats(0.0, 1.5), flag=st.sampled_from([[], ["--restart-failed"]]))
    def run_killed_at_a_random_moment(self, delay, flag):
        p = start(self.inst, *flag)
        try:
            p.wait(timeout=delay)  # the random moment of the kill (or the run ended before)
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGKILL)
            TOTALS["kills"] += 1
        p.communicate(timeout=30)

    @rule(key=st.sampled_from(KEYS), watched=st.booleans())
    def kill_a_running_task(self, key, watched):
        p = start(self.inst) if watched else None
        try:
            running = wait_until(lambda: (state_files(self.inst, key) or [""])[0].startswith("step-started")
                                 or (p is not None and p.poll() is not None) or p is None,
                                 timeout=20, what=f"{key} running")
            names = state_files(self.inst, key) or [""]
            if running and names[0].startswith("step-started"):
                subprocess.run([str(self.inst / ".drypipe" / key / "task"), "kill"], capture_output=True, timeout=30)
        finally:
            if p is not None:
                p.communicate(timeout=120)

    @rule(key=st.sampled_from(KEYS), how=st.sampled_from(["resume", "reset", "at-step-0", "at-step-1"]))
    def restart(self, key, how):
        extra = {"resume": [], "reset": ["--reset"], "at-step-0": ["--at-step", "0"],
                 "at-step-1": ["--at-step", "1"]}[how]
        res = cli(self.inst, "restart", "--task-key", key, "--wait", *extra)
        assert res.returncode in (0, 1, 2), res
        if res.returncode == 2:  # refused (running, waiting, not a step, unknown): one line
            assert len(res.stderr.splitlines()) == 1 and res.stderr.startswith("drypipe: error: "), res.stderr

    @rule(key=st.sampled_from(KEYS), fail=st.booleans())
    def make_a_step_fail_or_pass(self, key, fail):
        self.inst.mkdir(parents=True, exist_ok=True)
        marker = self.inst / f"fail-{key}"
        marker.touch() if fail else marker.unlink(missing_ok=True)

    @rule(v2=st.booleans())
    def change_the_generator(self, v2):
        self.inst.mkdir(parents=True, exist_ok=True)
        marker = self.inst / "gen-v2"
        marker.touch() if v2 else marker.unlink(missing_ok=True)

    @rule(args=st.sampled_from([["run", "--generator", GEN], ["run", "--generator", GEN, "--reset-failed"],
                                ["run", "--generator", GEN, "--restart-failed"], ["restart", "--task-key", "a"],
                                ["task", "--task-key", "b"], ["prepare", "--generator", GEN]]))
    def dry_run(self, args):
        if not self.inst.exists() or db_rows(self.inst, "select count(*) from task where state in "
                                                        "('launched', 'step-started')") != [(0,)]:
            return  # running tasks write their own files
        before = snapshot(self.inst)
        res = subprocess.run([sys.executable, "-m", "drypipe", "--dry-run", args[0], "-pid", str(self.inst),
                              *args[1:]], cwd=REPO, capture_output=True, text=True, timeout=60)
        assert res.returncode in (0, 2), res
        assert snapshot(self.inst) == before

    @rule()
    def read(self):
        if (self.inst / ".drypipe" / "drypipe.db").exists():
            res = cli(self.inst, "list-states")
            assert res.returncode == 0, res

    # -- invariants ----------------------------------------------------------------------------
    @invariant()
    def database_state_files_and_transitions_agree(self):
        tasks = dict((k, (s, n)) for k, s, n in db_rows(self.inst, "select key, state, step from task"))
        rows: dict[str, list] = {}
        for k, s, n in db_rows(self.inst, "select key, tr.state, tr.step from transition tr "
                                          "join task on task.id = tr.task_id order by tr.id"):
            rows.setdefault(k, []).append((s, n))
        for key, (state, step) in tasks.items():
            name = S.format(state, step)
            assert name in machine.replay_outcomes(rows.get(key, [])), (key, name, rows.get(key))
            if state not in S.ACTIVE:
                files = state_files(self.inst, key)
                assert files is None or files == [name], (key, files, name)

    @invariant()
    def nothing_ran_twice_and_no_attempt_started_early(self):
        trans: dict[str, list] = {}
        for k, s, n, at in db_rows(self.inst, "select key, tr.state, tr.step, tr.at from transition tr "
                                              "join task on task.id = tr.task_id order by tr.id"):
            trans.setdefault(k, []).append((s, n, at))
        attempts: dict[str, list] = {}  # key -> [(launched_at, ended_at or None)]
        for k, rows in trans.items():
            for s, _, at in rows:
                if s == S.LAUNCHED:
                    attempts.setdefault(k, []).append([at, None])
                elif s in S.TERMINAL and attempts.get(k) and attempts[k][-1][1] is None:
                    attempts[k][-1][1] = at
                elif s == S.READY and attempts.get(k) and attempts[k][-1][1] is None:
                    attempts[k][-1][1] = at  # launch-lost
        seen = set()
        for key, step, at in executions(self.inst):
            inside = [i for i, (lo, hi) in enumerate(attempts.get(key, [])) if lo <= at and (hi is None or at <= hi)]
            if not inside or (key, step, inside[-1]) in seen:
                TOTALS["twice"] += 1
            assert inside, f"{key} step {step} ran at {at} outside any attempt: {attempts.get(key)}"
            assert (key, step, inside[-1]) not in seen, f"{key} step {step} ran twice in one attempt"
            seen.add((key, step, inside[-1]))
        for key, rows in trans.items():
            for i, (s, n, at) in enumerate(rows):
                if s != S.STEP_STARTED or (i > 0 and rows[i - 1][0] == S.STEP_STARTED):
                    continue  # the first step of an attempt
                for up in UPSTREAM.get(key, []):
                    before = [r for r in trans.get(up, []) if r[2] <= at]
                    assert before and before[-1][0] == S.COMPLETED, \
                        f"{key} started at {at} while {up} was {before[-1][0] if before else 'never run'}"

    def teardown(self):
        try:
            if self.inst.exists():
                for m in self.inst.glob("fail-*"):
                    m.unlink()
                for _ in range(4):
                    p = start(self.inst, "--restart-failed")
                    _, err = p.communicate(timeout=180)
                    if p.returncode == 0:
                        break
                states = dict(db_rows(self.inst, "select key, state from task"))
                lost = [k for k in KEYS if states.get(k) != S.COMPLETED]
                TOTALS["lost"] += len(lost)
                assert not lost, (states, err)
                self.database_state_files_and_transitions_agree()
                self.nothing_ran_twice_and_no_attempt_started_early()
                for key, n in STEPS.items():  # every step ran at least once
                    assert {s for k, s, _ in executions(self.inst) if k == key} == set(range(n)), key
        finally:
            self.tmp.cleanup()


DryPipeModel.TestCase.settings = settings(max_examples=EXAMPLES, stateful_step_count=STEPS_PER_EXAMPLE,
                                          deadline=None, suppress_health_check=list(HealthCheck))
TestDryPipeModel = DryPipeModel.TestCase


@pytest.fixture(scope="module", autouse=True)
def report_totals(request):
    t0, failed = time.monotonic(), request.session.testsfailed
    yield
    print(f"\nmodel-based test: {TOTALS['examples']} examples, {TOTALS['kills']} orchestrator kills, "
          f"{TOTALS['twice']} runs twice, {TOTALS['lost']} tasks lost")
    if os.environ.get("DRYPIPE_TORTURE_REPORT"):  # one JSON line for `make torture`
        import json
        with open(os.environ["DRYPIPE_TORTURE_REPORT"], "a") as out:
            out.write(json.dumps({"test": "model", **TOTALS, "seconds": round(time.monotonic() - t0, 1),
                                  "failed": request.session.testsfailed > failed}) + "\n")
