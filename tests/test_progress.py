"""The progress of a run (drypipe/observe/progress.py): counts per key group and state, running
tasks with their elapsed times, the ETA from observed durations, and how `drypipe status` and
`drypipe run` show them (redrawn on a terminal, plain lines otherwise, never ANSI codes then)."""
import io
import os
import pty
import queue
import random
import re
import sqlite3
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import pytest

from conftest import REPO, drypipe, wait_until
from drypipe import Instance
from drypipe.api import TASK_COLUMNS, TaskInfo
from drypipe.cli.report import ConsoleReporter
from drypipe.observe import progress as P
from drypipe.observe.snapshot import snapshot

GEN = "tests.pipelines.progress:sleepers"
S_WITH_STEP = ("step-started", "failed", "killed", "timed-out")
T0 = 1_700_000_000.0
LINE = r"(\d+)/(\d+) completed, (\d+) running, (\d+) failed, ETA (unknown|\d+s|\d+m\d\ds|\d+h\d\dm)"


def task(key, state, launched=None, started=None, ended=None, step=None, message=None):
    return TaskInfo(key, state, step, "process", None, launched, started, ended, message, "/inst", 0, "{}")


def recorded():
    """An instance seen at T0 + 100: align.0-3 completed in 10, 20, 30, 20 s; align.4 and
    align.5 running (since 50 and 5 s), align.6 waiting; sort.0 failed, sort.1 and sort.2 ready;
    merge waiting."""
    tasks = [task(f"align.{i}", "completed", T0, T0 + 1, T0 + 1 + d) for i, d in enumerate((10, 20, 30, 20))]
    tasks += [task("align.4", "step-started", T0 + 40, T0 + 50, step=0),
              task("align.5", "launched", T0 + 95),
              task("align.6", "waiting"),
              task("sort.0", "failed", T0, T0, T0 + 3, step=1, message="step 1 exited with status 3"),
              task("sort.1", "ready"), task("sort.2", "ready"),
              task("merge", "waiting")]
    return tasks


# -- the pure functions ----------------------------------------------------------------------------

def test_key_groups_are_the_part_before_the_first_dot():
    assert [P.group_of(k) for k in ("align.12", "align.3.b", "merge", "task-for-chunk.7", "a-1")] == \
        ["align", "align", "merge", "task-for-chunk", "a-1"]


def test_a_duration_runs_from_the_first_step_else_from_the_launch():
    assert P.duration_of(task("a", "completed", 10.0, 12.0, 15.0)) == 3.0
    assert P.duration_of(task("a", "completed", 10.0, None, 15.0)) == 5.0
    assert P.duration_of(task("a", "launched", 10.0)) is None


def test_eta_from_the_mean_duration_of_each_group():
    # a: 4 left at a mean of 10 s; b: 2 left at 40 s; 2 running at once -> (40 + 80) / 2
    assert P.estimate_eta({"a": (4, 30.0, 3), "b": (2, 80.0, 2)}, running=2) == 60.0
    # c has no completed task yet: the mean of all (110 / 5 = 22 s) stands for it
    assert P.estimate_eta({"a": (4, 30.0, 3), "b": (2, 80.0, 2), "c": (5, 0.0, 0)}, running=2) == \
        pytest.approx((40 + 80 + 5 * 22) / 2)
    # nothing runs now: as if one did
    assert P.estimate_eta({"a": (4, 30.0, 3)}, running=0) == 40.0


def test_eta_is_unknown_before_any_task_completed_and_zero_when_nothing_is_left():
    assert P.estimate_eta({"a": (4, 0.0, 0), "b": (1, 0.0, 0)}, running=3) is None
    assert P.estimate_eta({}, running=0) == 0.0
    assert P.estimate_eta({"a": (0, 0.0, 0)}, running=0) == 0.0
    assert P.estimate_eta({"a": (0, 30.0, 3)}, running=0) == 0.0


def test_progress_of_recorded_tasks():
    p = P.compute_progress(recorded(), T0 + 100)
    assert p.counts == {"completed": 4, "step-started": 1, "launched": 1, "waiting": 2, "failed": 1, "ready": 2}
    assert list(p.groups) == ["align", "sort", "merge"]
    assert [(n, g.total, g.remaining, [g.column(c) for c in P.GROUP_COLUMNS]) for n, g in p.groups.items()] == [
        ("align", 7, 3, [1, 0, 2, 4, 0]), ("sort", 3, 2, [0, 2, 0, 0, 1]), ("merge", 1, 1, [1, 0, 0, 0, 0])]
    # the longest running first; a task not started yet runs since its launch
    assert p.running == [("align.4", "step-started.0", 50.0), ("align.5", "launched", 5.0)]
    assert [t.key for t in p.failed] == ["sort.0"]
    # align: 3 left x 20 s; sort (no completed task) and merge: 3 left x 20 s (the mean of all)
    assert p.summary == P.Summary(total=11, completed=4, running=2, failed=1, eta=(60 + 60) / 2)
    assert p.summary.percent == 36


def test_progress_of_no_task_and_of_a_finished_run():
    assert P.compute_progress([], T0).summary == P.Summary(0, 0, 0, 0, 0.0)
    done = [task(f"a.{i}", "completed", T0, T0, T0 + 1) for i in range(3)]
    s = P.compute_progress(done, T0 + 5).summary
    assert (s.completed, s.total, s.eta, s.percent) == (3, 3, 0.0, 100)


def as_db(tasks):
    """The tasks as rows of a task table (the columns `drypipe status` reads), in SQLite."""
    con = sqlite3.connect(":memory:")
    con.execute("CREATE TABLE task (id INTEGER PRIMARY KEY, key TEXT, state TEXT, step INTEGER, executer_type TEXT, "
                "job_id TEXT, launched_at FLOAT, started_at FLOAT, ended_at FLOAT, message TEXT, attempt INTEGER)")
    con.executemany("INSERT INTO task VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(i + 1, t.key, t.state, t.step, "process", None, t.launched_at, t.started_at, t.ended_at,
                      t.message, 1) for i, t in enumerate(tasks)])
    return con


def from_db(con, now, limit=P.MAX_GROUPS):
    def make_task(r):
        key, state, step, ex, job, la, sa, ea, msg, id_, spec, att = r
        return TaskInfo(key, state, step, ex, job, la, sa, ea, msg, "/inst", id_, spec, att)
    return snapshot(lambda sql, params: con.execute(sql, params).fetchall(), now, make_task,
                    TASK_COLUMNS.replace("spec", "NULL"), limit)


def test_status_computed_by_sqlite_agrees_with_the_records():
    """drypipe status computes its Progress in SQL (observe/snapshot.py, fast at 100,000 tasks):
    on random instances it must say what compute_progress says from the task records."""
    rng = random.Random(3)
    states = ["waiting", "ready", "launched", "step-started", "completed", "failed", "killed", "timed-out"]
    for n in [0, 1, 7, 60, 300] + [rng.randint(1, 200) for _ in range(20)]:
        tasks = []
        for i in range(n):
            state = rng.choice(states)
            launched = T0 + rng.uniform(0, 50) if state not in ("waiting", "ready") else None
            started = launched + rng.uniform(0, 5) if launched is not None and rng.random() < 0.8 else None
            ended = (started or launched) + rng.uniform(0, 30) if state in ("completed", "failed", "killed",
                                                                                "timed-out") and launched else None
            key = f"{rng.choice(['align', 'sort', 'merge', 'g' + str(rng.randint(0, 40))])}" + \
                (f".{i}" if rng.random() < 0.9 else "")
            tasks.append(task(key, state, launched, started, ended, step=0 if state in S_WITH_STEP else None,
                              message="boom" if state == "failed" else None))
        expected, got = P.compute_progress(tasks, T0 + 100), from_db(as_db(tasks), T0 + 100)
        assert got.counts == expected.counts and got.running == expected.running, n
        assert got.summary.total == expected.summary.total and got.summary.completed == expected.summary.completed
        assert (got.summary.running, got.summary.failed) == (expected.summary.running, expected.summary.failed)
        assert got.summary.eta == pytest.approx(expected.summary.eta), n
        assert [t.key for t in got.failed] == [t.key for t in expected.failed][:P.MAX_FAILED]
        assert got.n_groups == len(expected.groups)
        assert list(got.groups) == list(expected.groups)[:P.MAX_GROUPS]
        for name, g in got.groups.items():
            e = expected.groups[name]
            assert (g.total, [g.column(c) for c in P.GROUP_COLUMNS]) == \
                (e.total, [e.column(c) for c in P.GROUP_COLUMNS]), (n, name)
        assert P.status_text(got, "/inst", None) == P.status_text(expected, "/inst", None)


def test_eta_formats():
    assert [P.fmt_eta(s) for s in (None, 0, 0.4, 42.3, 59.6, 130, 3599, 7380, 360000)] == \
        ["unknown", "0s", "0s", "42s", "1m00s", "2m10s", "59m59s", "2h03m", "100h00m"]


def test_the_plain_lines():
    s = P.Summary(total=100, completed=42, running=3, failed=1, eta=130.0)
    assert P.summary_line(s) == "42/100 completed, 3 running, 1 failed, ETA 2m10s"
    assert P.summary_line(s, percent=True) == "42/100 completed (42%), 3 running, 1 failed, ETA 2m10s"
    line = P.clock_line(s, T0)
    clock = time.strftime("%H:%M:%S", time.localtime(T0))
    assert line == clock + " 42/100 completed, 3 running, 1 failed, ETA 2m10s"
    assert re.fullmatch(r"\d\d:\d\d:\d\d " + LINE, line)
    assert P.run_line(P.Summary(7, 0, 0, 0, None), 12.34) == \
        "[   12.3s] 0/7 completed, 0 running, 0 failed, ETA unknown"
    for text in (line, P.run_line(s, 1.0), P.status_text(P.compute_progress(recorded(), T0 + 100), "/inst", 42)):
        assert "\033" not in text


def test_status_text_of_recorded_tasks():
    text = P.status_text(P.compute_progress(recorded(), T0 + 100), "/inst", 4242)
    lines = text.splitlines()
    assert lines[:9] == [
        "/inst: orchestrator running (pid 4242)",
        "11 tasks: 2 waiting, 2 ready, 1 launched, 1 step-started, 4 completed, 1 failed",
        "running (2):",
        "  align.4  step-started.0  50.00s",
        "  align.5  launched  5.00s",
        "failed (1):",
        "  sort.0  failed.1  step 1 exited with status 3  /inst/.drypipe/sort.0/out.log",
        "",
        "group  total  waiting  ready  running  completed  failed"]
    assert [ln.split() for ln in lines[10:13]] == [["align", "7", "1", "0", "2", "4", "0"],
                                                   ["sort", "3", "0", "2", "0", "0", "1"],
                                                   ["merge", "1", "1", "0", "0", "0", "0"]]
    assert lines[-2:] == ["", "4/11 completed (36%), 2 running, 1 failed, ETA 1m00s"]
    assert P.status_text(P.compute_progress([], T0), "/inst", None).splitlines()[:2] == \
        ["/inst: no orchestrator running", "0 tasks: "]


def test_status_lists_the_ten_longest_running_tasks():
    tasks = [task(f"t.{i}", "launched", T0 + i) for i in range(15)]
    lines = P.status_text(P.compute_progress(tasks, T0 + 100), "/inst", 1).splitlines()
    assert lines[2] == "running (15):"
    assert [ln.split()[0] for ln in lines[3:13]] == [f"t.{i}" for i in range(10)]
    assert lines[13] == "  ... and 5 more"


def test_many_groups_are_cut():
    tasks = [task(f"g{i}", "waiting") for i in range(40)]
    table = P.group_table(P.compute_progress(tasks, T0).groups)
    assert len(table.splitlines()) == 2 + P.MAX_GROUPS + 1 and table.endswith("... and 10 more groups")


# -- the tracker of `drypipe run`: the same numbers, one event at a time ---------------------------

def ended(t, state, at):
    return task(t.key, state, t.launched_at, t.started_at, at, step=0 if state != "completed" else None)


def test_the_tracker_agrees_with_the_snapshot_at_every_event():
    rnd = random.Random(7)
    tasks = recorded() + [task(f"{rnd.choice('abcde')}.{i}", "ready") for i in range(60)] + \
        [task(f"solo{i}", "waiting") for i in range(5)]
    tracker = P.ProgressTracker.from_tasks(tasks)
    by_key = {t.key: i for i, t in enumerate(tasks)}
    pending = [t for t in tasks if t.state not in ("completed", "failed")]
    rnd.shuffle(pending)
    for n, t in enumerate(pending):
        running = rnd.randrange(4)
        snap = P.compute_progress(tasks, T0 + 1000).summary
        mine = tracker.summary(running)
        assert (mine.total, mine.completed, mine.failed) == (snap.total, snap.completed, snap.failed)
        expected = P.compute_progress(tasks, T0 + 1000)
        groups = {k: (g.remaining, g.durations, g.measured) for k, g in expected.groups.items()}
        assert mine.eta == pytest.approx(P.estimate_eta(groups, running)), n
        start = T0 + rnd.uniform(0, 100)
        t = task(t.key, t.state, start, start + 1)
        done = ended(t, rnd.choice(["completed"] * 4 + ["failed", "killed", "timed-out"]),
                     start + 1 + rnd.uniform(1, 60))
        tasks[by_key[t.key]] = done
        tracker.ended(done)
    assert tracker.summary(0).eta == 0.0 and tracker.remaining == 0
    assert tracker.completed + tracker.failed == tracker.total == len(tasks)


def test_the_tracker_ignores_what_is_not_an_ending():
    tracker = P.ProgressTracker.from_tasks([task("a.0", "ready")])
    tracker.ended(task("a.0", "step-started", T0, T0, step=0))
    assert (tracker.remaining, tracker.completed, tracker.summary(1).eta) == (1, 0, None)


# -- ConsoleReporter (drypipe run) -----------------------------------------------------------------

class Nodes(dict):
    """The graph's nodes, counting the scans."""
    scans = 0

    def values(self):
        Nodes.scans += 1
        return super().values()

    def __iter__(self):
        Nodes.scans += 1
        return super().__iter__()


class Stream(io.StringIO):
    def __init__(self, tty):
        super().__init__()
        self.tty = tty
        self.writes = 0

    def isatty(self):
        return self.tty

    def write(self, s):
        self.writes += 1
        return super().write(s)


def fake_orch(n_tasks):
    nodes = Nodes((f"t.{i}", task(f"t.{i}", "ready")) for i in range(n_tasks))
    executor = SimpleNamespace(running=0, running_now=0, max_parallel=4)
    return SimpleNamespace(instance_dir="/inst", graph=SimpleNamespace(nodes=nodes), local=executor,
                           slurm=SimpleNamespace(running=0), remote=SimpleNamespace(running=0))


def finish(reporter, orch):
    counts = {}
    for n in dict.values(orch.graph.nodes):
        counts[n.state] = counts.get(n.state, 0) + 1
    reporter.finished(orch, SimpleNamespace(counts=counts))


def test_plain_progress_of_run_one_line_per_interval_no_ansi():
    stream = Stream(tty=False)
    orch = fake_orch(4)
    r = ConsoleReporter(stream=stream)
    r.started(orch)
    for _ in range(1000):
        r.progress(orch)  # one line at once, then one every 10 s
    orch.local.running = 1
    node = orch.graph.nodes["t.0"] = task("t.0", "completed", T0, T0, T0 + 2)
    r.task_ended(orch, node)
    node = orch.graph.nodes["t.1"] = task("t.1", "failed", T0, T0, T0 + 1, step=0, message="boom")
    r.task_ended(orch, node)
    r.progress(orch)
    finish(r, orch)
    out = stream.getvalue()
    assert "\033" not in out and "\r" not in out
    lines = out.splitlines()
    assert lines[0] == "drypipe: running /inst (up to 4 local tasks at once)"
    assert re.fullmatch(r"\[ +\d+\.\ds\] 0/4 completed, 0 running, 0 failed, ETA unknown", lines[1]), lines
    assert lines[2] == "task t.1: failed.0 (boom)"
    assert re.fullmatch(r"\[ +\d+\.\ds\] 1/4 completed, 0 running, 1 failed, ETA 4s", lines[3]), lines
    assert len(lines) == 4


def test_tty_progress_of_run_is_redrawn_at_most_ten_times_a_second():
    stream = Stream(tty=True)
    orch = fake_orch(3)
    r = ConsoleReporter(stream=stream)
    r.started(orch)
    t = time.monotonic()
    while time.monotonic() - t < 0.35:
        r.progress(orch)
    redraws = stream.getvalue().count("\r\033[K")
    assert 1 <= redraws <= 5, redraws  # 0.35 s at most 10 a second (and the first at once)
    node = orch.graph.nodes["t.2"] = task("t.2", "killed", T0, T0, T0 + 1, step=0)
    r.task_ended(orch, node)
    r.progress(orch)  # the line the failure's line erased comes back at once
    assert re.search(r"\r\033\[Ktask t\.2: killed\.0\n\r\033\[K\[ +\d+\.\ds\] "
                     r"0/3 completed, 0 running, 1 failed, ETA unknown\Z", stream.getvalue()), stream.getvalue()
    finish(r, orch)
    assert stream.getvalue().endswith("\n")


def test_a_scheduling_round_scans_nothing_and_costs_little():
    orch = fake_orch(1000)
    r = ConsoleReporter(stream=Stream(tty=True))
    r.started(orch)
    Nodes.scans = 0
    r.interval = 0.0  # redraw at every round: still no scan of the graph
    for _ in range(200):
        r.progress(orch)
    assert Nodes.scans == 0
    for i in range(5):  # the generator adds tasks: only they are read
        orch.graph.nodes[f"new.{i}"] = task(f"new.{i}", "ready")
    r.generated(orch, 5)
    assert Nodes.scans == 1 and r.tracker.total == 1005
    for i in range(1000):
        node = orch.graph.nodes[f"t.{i}"] = task(f"t.{i}", "completed", T0, T0, T0 + 1)
        r.task_ended(orch, node)
        r.progress(orch)
    assert Nodes.scans == 1 and r.tracker.completed == 1000 and r.tracker.summary(0).eta == 5.0
    r.interval = ConsoleReporter.TTY_INTERVAL
    t = time.perf_counter()
    for _ in range(100_000):
        r.progress(orch)
    assert time.perf_counter() - t < 2.0  # well under a microsecond a round; 20 us is a failure


def test_quiet_prints_nothing():
    stream = Stream(tty=True)
    orch = fake_orch(2)
    r = ConsoleReporter(quiet=True, stream=stream)
    r.started(orch)
    r.progress(orch)
    node = orch.graph.nodes["t.0"] = task("t.0", "failed", T0, T0, T0 + 1, step=0)
    r.task_ended(orch, node)
    finish(r, orch)
    assert stream.getvalue() == ""


# -- through the real CLI --------------------------------------------------------------------------

def lines_of(stream):
    """A queue that receives the lines of stream (None at its end), read by a thread."""
    q = queue.Queue()

    def pump():
        for line in stream:
            q.put(line)
        q.put(None)
    threading.Thread(target=pump, daemon=True).start()
    return q


def next_line(q, timeout=30):
    line = q.get(timeout=timeout)
    assert line is not None, "the output ended"
    return line.rstrip("\n")


def counts(inst):
    try:
        return Instance(str(inst)).counts()
    except Exception:  # noqa: BLE001 - no database yet
        return {}


def stop(proc):
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_status_watch_to_a_pipe_prints_plain_summary_lines(instance_dir):
    run = subprocess.Popen([sys.executable, "-m", "drypipe", "run", "-j", "3", "-pid", str(instance_dir),
                            "--generator", GEN], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
    watch = None
    try:
        wait_until(lambda: counts(instance_dir).get("completed") == 4 and
                   all((instance_dir / ".drypipe" / f"slow.{i}" / "state.step-started.0").exists()
                       for i in range(3)), what="the quick tasks to end and the slow ones to start")
        snapshot = drypipe("status", "-pid", instance_dir, cwd=REPO, check=True).stdout.splitlines()
        assert snapshot[0] == f"{instance_dir}: orchestrator running (pid {run.pid})"
        assert re.fullmatch(r"8 tasks: 1 waiting, (3 launched|\d launched, \d step-started|3 step-started), "
                            r"4 completed", snapshot[1]), snapshot
        assert snapshot[2] == "running (3):"
        assert [ln.split()[:3] for ln in snapshot[-7:-2]] == [
            ["group", "total", "waiting"], ["-----", "-----", "-------"],
            ["quick", "4", "0"], ["slow", "3", "0"], ["merge", "1", "1"]]
        assert re.fullmatch(r"4/8 completed \(50%\), 3 running, 0 failed, ETA \d+s", snapshot[-1]), snapshot

        watch = subprocess.Popen([sys.executable, "-m", "drypipe", "status", "-pid", str(instance_dir), "--watch",
                                  "--interval", "0.2"], cwd=REPO, stdout=subprocess.PIPE, text=True,
                                 env={**os.environ, "PYTHONUNBUFFERED": "1"})
        q = lines_of(watch.stdout)
        assert next_line(q) == f"{instance_dir}: orchestrator running (pid {run.pid})"
        seen = [next_line(q) for _ in range(3)]  # one a refresh, while the slow tasks run
        for line in seen:
            m = re.fullmatch(r"\d\d:\d\d:\d\d " + LINE, line)
            assert m and m.groups() == ("4", "8", "3", "0", m.group(5)) and m.group(5) != "unknown", seen
    finally:
        (instance_dir / "release").touch()
        try:
            _, err = run.communicate(timeout=60)
        finally:
            stop(run)
    assert run.returncode == 0, err
    rest = []
    while (line := q.get(timeout=30)) is not None:  # --watch ends by itself with the run
        rest.append(line.rstrip("\n"))
    watch.wait(timeout=30)
    assert watch.returncode == 0
    assert all(re.fullmatch(r"\d\d:\d\d:\d\d " + LINE, ln) for ln in rest), rest
    assert rest[-1].endswith(" 8/8 completed, 0 running, 0 failed, ETA 0s"), rest
    # drypipe run, its stderr a pipe: plain progress lines, no ANSI
    assert "\033" not in err and "\r" not in err
    progress_lines = [ln for ln in err.splitlines() if ln.startswith("[")]
    assert progress_lines and all(re.fullmatch(r"\[ +\d+\.\ds\] " + LINE, ln) for ln in progress_lines), err
    assert progress_lines[-1].endswith("] 8/8 completed, 0 running, 0 failed, ETA 0s"), err
    assert err.splitlines()[-1] == "drypipe: all 8 tasks completed"


def test_run_on_a_terminal_redraws_its_progress_line(instance_dir):
    instance_dir.mkdir(parents=True)
    (instance_dir / "release").touch()  # the slow tasks end at once
    master, slave = pty.openpty()
    try:
        run = subprocess.Popen([sys.executable, "-m", "drypipe", "run", "-pid", str(instance_dir),
                                "--generator", GEN], cwd=REPO, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=slave)
    finally:
        os.close(slave)
    out = b""
    try:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the run ended, its terminal closed
                break
            if not chunk:
                break
            out += chunk
        assert run.wait(timeout=60) == 0, out
    finally:
        os.close(master)
        stop(run)
    text = out.decode()
    assert text.startswith(f"drypipe: running {instance_dir} "), text
    frames = [f.splitlines()[0] for f in text.split("\r\x1b[K")[1:]]  # the summary follows the last
    assert len(frames) >= 2 and all(re.fullmatch(r"\[ +\d+\.\ds\] " + LINE, f) for f in frames), text
    assert re.search(r"\] 0/8 completed, \d running, 0 failed, ETA unknown\Z", frames[0]), text
    assert frames[-1].endswith("] 8/8 completed, 0 running, 0 failed, ETA 0s"), text
    assert text.rstrip().endswith("drypipe: all 8 tasks completed"), text


def test_the_summary_a_run_ends_with_has_its_counts_and_the_eta_so_far():
    tracker = P.ProgressTracker.from_tasks([task("a.0", "completed", T0, T0, T0 + 4), task("a.1", "ready")])
    assert tracker.summary_of_counts({"completed": 1, "waiting": 2, "failed": 1}) == P.Summary(4, 1, 0, 1, 4.0)
    assert tracker.summary_of_counts({"completed": 3, "killed": 1}) == P.Summary(4, 3, 0, 1, 0.0)
    assert tracker.summary_of_counts({"completed": 1, "launched": 2}).running == 2


def test_run_eta_keeps_the_runs_own_pace_when_durations_promise_less():
    """1000 tasks of 1 ms each, 2 at a time, of which 40 ended in 0.2 s: their durations say
    0.5 s are left, the run's pace says 960 x 5 ms = 4.8 s. Before as many ended as run at once,
    and where durations promise more than the pace, durations decide."""
    now = [0.0]
    tracker = P.ProgressTracker(clock=lambda: now[0])
    tasks = [task(f"t-{i}", "ready") for i in range(1000)]
    for t in tasks:
        tracker.add(t)
    now[0] = 0.05
    first = task("t-0", "completed", 0.0, 0.0, 0.001)
    tracker.ended(first)
    assert tracker.summary(running=2).eta == pytest.approx(999 * 0.001 / 2)  # 1 ended, 2 run
    for i in range(1, 40):
        tracker.ended(task(f"t-{i}", "completed", 0.0, 0.0, 0.001))
    now[0] = 0.2
    assert tracker.summary(running=2).eta == pytest.approx(960 * 0.2 / 40)
    slow = P.ProgressTracker(clock=lambda: now[0])  # long tasks: their durations say more
    for t in tasks[:10]:
        slow.add(t)
    for i in range(2):
        slow.ended(task(f"t-{i}", "completed", 0.0, 0.0, 10.0))
    assert slow.summary(running=2).eta == pytest.approx(8 * 10.0 / 2)
