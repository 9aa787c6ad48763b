"""Bad input, through the CLI: the catalogue of mistakes a user makes, one test each.

For each: a one-line `drypipe: error: ...` naming the culprit (task key, file, option) and
exit 2 when the mistake stops the command; exit 1 with the message in the task's out.log and
in the run's summary when a task broke its contract; never a traceback, unless -v asks for it;
and an instance left consistent: its DB opens, each task dir holds exactly one state file,
equal to the task's state in the `tasks` view, and a correct run then works.

Then security: task keys never make DryPipe write outside the instance dir, values are never
evaluated by a shell, generated files are not world-writable.

The generators are in tests/pipelines/bad_input.py.
"""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest

from conftest import REPO, drypipe, state_files, wait_until
from drypipe import Instance

GEN = "tests.pipelines.bad_input"
PIPELINES = REPO / "tests" / "pipelines"
FIX = {"FIX": "1"}


# -- helpers ------------------------------------------------------------------------------------

def run(inst, gen, *extra, env=None, verbose=False, quiet=False):
    pre = ["-v"] if verbose else []
    q = ["-q"] if quiet else []
    return drypipe(*pre, "run", *q, "--pipeline-instance-dir", inst, "--generator", f"{GEN}:{gen}", *extra,
                   cwd=REPO, env=env)


def assert_error_line(res, *culprits, code=2):
    """exit `code`, no traceback, stderr is exactly one `drypipe: error:` line naming the culprits."""
    assert res.returncode == code, res
    assert "Traceback" not in res.stderr, res
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("drypipe: error: "), res
    for c in culprits:
        assert c in lines[0], (c, res)
    return lines[0]


def assert_verbose_traceback(res, error_line):
    """With -v: the same error line, and the traceback before it in the log output."""
    assert res.returncode == 2, res
    assert "Traceback (most recent call last)" in res.stderr, res
    assert [ln for ln in res.stderr.splitlines() if ln.startswith("drypipe: error: ")] == [error_line], res


def broken_run(inst, gen, *culprits, env=None, verbose=True):
    """Run the broken generator: a one-line error naming the culprits; with -v, its traceback."""
    line = assert_error_line(run(inst, gen, env=env), *culprits)
    if verbose:
        assert_verbose_traceback(run(inst, gen, env=env, verbose=True), line)
    return line


def assert_last_error_line(res, *culprits, code=2):
    """As assert_error_line, for errors after progress output: one error line, the last one."""
    assert res.returncode == code, res
    assert "Traceback" not in res.stderr, res
    lines = res.stderr.splitlines()
    errors = [ln for ln in lines if ln.startswith("drypipe: error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], res
    for c in culprits:
        assert c in errors[0], (c, res)
    return errors[0]


def _writable(d) -> bool:
    probe = Path(d) / ".probe"
    try:
        probe.touch()
        probe.unlink()
        return True
    except OSError:
        return False


def db_states(inst) -> dict[str, str]:
    """Task key -> state name (state, or state.step) from the documented `tasks` view."""
    db = Path(inst) / ".drypipe" / "drypipe.db"
    # a read-only dir cannot hold the WAL index: read the file as immutable there (as DryPipe does)
    ro = os.access(db.parent, os.W_OK) and _writable(db.parent)
    con = sqlite3.connect(f"file:{db}?mode=ro" + ("" if ro else "&immutable=1"), uri=True)
    try:
        return {k: (s if st is None else f"{s}.{st}") for k, s, st in con.execute("SELECT key, state, step FROM tasks")}
    finally:
        con.close()


def assert_consistent(inst, cli=False) -> dict[str, str]:
    """The DB opens (with the API; and `drypipe list-states` when cli), and every task dir has
    exactly one state file, the task's state in the `tasks` view."""
    if cli:
        res = drypipe("list-states", "-pid", inst, cwd=REPO)
        assert res.returncode == 0 and "Traceback" not in res.stderr, res
    api = {t.key: t.state_name for t in Instance(str(inst)).tasks()}
    view = db_states(inst)
    assert api == view
    for key, files in state_files(Path(inst)).items():
        assert key in view, f"task dir .drypipe/{key} of a task the DB does not know"
        assert files == [f"state.{view[key]}"], (key, files, view[key])
    return view


def assert_fixed_run_works(inst, gen, expected_keys=None):
    res = run(inst, gen, env=FIX, quiet=True)
    assert res.returncode == 0, res
    states = assert_consistent(inst)
    assert set(states.values()) == {"completed"}, states
    if expected_keys is not None:
        assert set(states) == set(expected_keys)


def out_log(inst, key) -> str:
    return (Path(inst) / ".drypipe" / key / "out.log").read_text()


def tree(root: Path, exclude: Path | None = None) -> set[str]:
    """Every path under root (relative), except those under exclude."""
    out = set()
    for dirpath, dirnames, filenames in os.walk(root):
        if exclude is not None and Path(dirpath).is_relative_to(exclude):
            dirnames[:] = []
            continue
        for n in dirnames + filenames:
            if n.endswith(("-wal", "-shm")):  # SQLite's, come and go with connections
                continue
            p = Path(dirpath) / n
            if exclude is None or not p.is_relative_to(exclude):
                out.add(str(p.relative_to(root)))
    return out


def line_of(path: Path, marker: str) -> int:
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if marker in line:
            return i
    raise AssertionError(f"{marker!r} not in {path}")


def _chattr(flag: str, path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["chattr", flag, str(path)], capture_output=True, text=True)


@pytest.fixture
def immutable(tmp_path):
    """immutable(path): `chattr +i` path for the test (undone at teardown); skips the test when
    the filesystem of tmp_path (or our privileges) do not support it."""
    probe = tmp_path / "chattr-probe"
    probe.mkdir()
    try:
        res = _chattr("+i", probe)
    except FileNotFoundError:
        pytest.skip("chattr is not installed: cannot make a directory unwritable for root")
    if res.returncode != 0:
        pytest.skip(f"chattr +i is not supported on the filesystem of {tmp_path} "
                    f"(or without CAP_LINUX_IMMUTABLE): {res.stderr.strip()}")
    _chattr("-i", probe)
    done = []

    def make(path: Path):
        res = _chattr("+i", path)
        assert res.returncode == 0, res.stderr
        done.append(path)

    try:
        yield make
    finally:
        for p in reversed(done):
            _chattr("-i", p)


def release(path: Path):
    assert _chattr("-i", path).returncode == 0


# -- errors in the pipeline (exit 2, one line) ---------------------------------------------------

def test_duplicate_key(instance_dir):
    broken_run(instance_dir, "duplicate_key", "duplicate task key 'same'")
    assert assert_consistent(instance_dir, cli=True) == {}  # nothing of a broken generation is persisted
    assert_fixed_run_works(instance_dir, "duplicate_key", {"same", "other", "same-2"})


@pytest.mark.parametrize("key", ["a/b", "..", "has space"])
def test_invalid_key(instance_dir, key):
    broken_run(instance_dir, "bad_key", f"invalid task key {key!r}", "bad_input.py:", env={"BAD_KEY": key},
               verbose=key == "a/b")
    assert assert_consistent(instance_dir) == {}
    assert not list((instance_dir / "output").iterdir())
    if key == "a/b":
        assert_fixed_run_works(instance_dir, "bad_key", {"fine", "fixed-key"})


def test_invalid_key_from_a_sub_pipeline_prefix(instance_dir):
    broken_run(instance_dir, "bad_key_prefix", "invalid task key '../x'", env={"BAD_KEY": "../"})
    assert assert_consistent(instance_dir) == {}
    assert_fixed_run_works(instance_dir, "bad_key_prefix", {"fixed-x"})


RESERVED = ["drypipe.db", "drypipe.db-wal", "drypipe.db-shm", "drypipe.db-journal", "orchestrator.lock",
            "state.ready", "instance.log", "drypipe.log", "DryPipe.DB"]


@pytest.mark.parametrize("key", RESERVED)
def test_key_naming_a_file_of_drypipe_is_refused_on_a_new_instance(instance_dir, key):
    """A task's dir is .drypipe/<key>/: a key naming a file DryPipe keeps there is refused when
    generated, not at launch ("Not a directory")."""
    broken_run(instance_dir, "bad_key", f"invalid task key {key!r}", "reserved", "bad_input.py:",
               env={"BAD_KEY": key}, verbose=key == "drypipe.db")
    assert assert_consistent(instance_dir, cli=True) == {}
    assert (instance_dir / ".drypipe" / "drypipe.db").is_file()
    assert not (instance_dir / "output" / key).exists()
    if key == "drypipe.db":
        assert_fixed_run_works(instance_dir, "bad_key", {"fine", "fixed-key"})


@pytest.mark.parametrize("key", ["drypipe.db", "drypipe.db-wal", "orchestrator.lock"])
def test_key_naming_a_file_of_drypipe_leaves_an_existing_instance_intact(instance_dir, key):
    assert_fixed_run_works(instance_dir, "bad_key", {"fine", "fixed-key"})
    db = instance_dir / ".drypipe" / "drypipe.db"
    before = db.stat().st_ino
    assert_error_line(run(instance_dir, "bad_key", env={"BAD_KEY": key}), f"invalid task key {key!r}", "reserved")
    assert db.is_file() and db.stat().st_ino == before
    assert assert_consistent(instance_dir, cli=True) == {"fine": "completed", "fixed-key": "completed"}
    for command in (["status"], ["list-states"]):
        res = drypipe(*command, "-pid", instance_dir, cwd=REPO)
        assert res.returncode == 0 and "Traceback" not in res.stderr, res
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        con.close()
    assert_fixed_run_works(instance_dir, "bad_key", {"fine", "fixed-key"})


def test_generator_that_raises_names_the_exception_the_line_and_the_last_task(instance_dir):
    line = line_of(PIPELINES / "bad_input.py", "# KeyError: the line asserted")
    broken_run(instance_dir, "generator_raises", f"DAG generator {GEN}:generator_raises raised KeyError: 'row-7'",
               f"bad_input.py:{line}", "after task 'last-good'")
    assert assert_consistent(instance_dir) == {}
    assert_fixed_run_works(instance_dir, "generator_raises", {"first", "last-good", "row-7"})


def test_generator_that_raises_after_tasks_ran(instance_dir):
    """The second invocation raises: the task that ran stays completed, the run stops cleanly."""
    res = run(instance_dir, "raises_after_completion")
    line = assert_last_error_line(res, "raised RuntimeError: second pass is broken", "bad_input.py:",
                                  "after task 'down'")
    assert_verbose_traceback(run(instance_dir, "raises_after_completion", verbose=True), line)
    assert assert_consistent(instance_dir, cli=True) == {"up": "completed"}
    assert_fixed_run_works(instance_dir, "raises_after_completion", {"up", "down"})


def test_generator_that_raises_while_tasks_run_leaves_the_instance_consistent(instance_dir):
    go = threading.Timer(1.0, (instance_dir / "go").touch)  # 'slow' ends 1 s after the run started
    go.start()
    try:
        res = run(instance_dir, "raises_while_running")
    finally:
        go.join()
    assert_last_error_line(res, "raised RuntimeError: second pass is broken")
    # no orchestrator runs any more: whatever 'slow' did (or was made to do), the DB must agree with it
    slow = instance_dir / ".drypipe" / "slow"
    wait_until(lambda: not (slow / "state.launched").exists() and not (slow / "state.step-started.0").exists(),
               timeout=10, what="slow to end")
    assert assert_consistent(instance_dir)["slow"] in ("completed", "killed.0")


def test_generator_module_that_does_not_exist(instance_dir):
    args = ["run", "-pid", instance_dir, "--generator", "tests.pipelines.no_such_module:dag"]
    line = assert_error_line(drypipe(*args, cwd=REPO), "--generator 'tests.pipelines.no_such_module:dag'",
                             "module 'tests.pipelines.no_such_module' not found")
    assert_verbose_traceback(drypipe("-v", *args, cwd=REPO), line)
    assert not instance_dir.exists()  # nothing was made of the instance
    assert_fixed_run_works(instance_dir, "good", {"a", "b"})


def test_generator_module_that_does_not_exist_on_an_existing_instance(instance_dir):
    run(instance_dir, "good", quiet=True)
    before = db_states(instance_dir)
    res = drypipe("run", "-pid", instance_dir, "--generator", "no_such_top_module:dag", cwd=REPO)
    assert_error_line(res, "module 'no_such_top_module' not found")
    assert assert_consistent(instance_dir, cli=True) == before


def test_generator_module_with_a_syntax_error(instance_dir, tmp_path):
    (tmp_path / "mods").mkdir()
    (tmp_path / "mods" / "broken_syntax.py").write_text("def dag(dsl):\n    yield dsl.task(key='a'\n")
    res = drypipe("run", "-pid", instance_dir, "--generator", "broken_syntax:dag", cwd=REPO,
                  env={"PYTHONPATH": str(tmp_path / "mods")})
    assert_error_line(res, "broken_syntax", "SyntaxError", "line 2")
    assert not instance_dir.exists()


def test_generator_function_that_does_not_exist(instance_dir):
    res = drypipe("run", "-pid", instance_dir, "--generator", f"{GEN}:no_such_function", cwd=REPO)
    assert_error_line(res, f"--generator '{GEN}:no_such_function'", "has no function 'no_such_function'")
    # (nothing raised: no traceback to show with -v)
    assert not instance_dir.exists()
    assert_fixed_run_works(instance_dir, "good", {"a", "b"})


@pytest.mark.parametrize("spec", ["no_colon_here", f"{GEN}:"])
def test_generator_option_that_is_not_module_colon_function(instance_dir, spec):
    res = drypipe("run", "-pid", instance_dir, "--generator", spec, cwd=REPO)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res
    assert len(res.stderr.splitlines()) == 1 and "--generator" in res.stderr and repr(spec) in res.stderr, res
    assert not instance_dir.exists()


def test_input_referring_to_an_undeclared_output(instance_dir):
    broken_run(instance_dir, "undeclared_output_ref", "task 't1' declares no output 'nope'", "bad_input.py:")
    assert assert_consistent(instance_dir) == {}
    assert_fixed_run_works(instance_dir, "undeclared_output_ref", {"t1", "t2"})


def test_calls_a_script_that_does_not_exist(instance_dir):
    broken_run(instance_dir, "missing_script", "task 'scripted'", "calls('no-such-script.sh')", "no such script",
               str(PIPELINES))
    assert assert_consistent(instance_dir) == {}
    assert_fixed_run_works(instance_dir, "missing_script", {"ok", "scripted"})
    assert (instance_dir / "output" / "scripted" / "from-script.txt").read_text() == "from the script\n"


def test_python_call_not_decorated(instance_dir):
    broken_run(instance_dir, "undecorated_call", "task 'plain'", "plain_function",
               "not decorated with @DryPipe.python_call()", "bad_input.py:")
    assert assert_consistent(instance_dir) == {}
    assert_fixed_run_works(instance_dir, "undecorated_call", {"plain"})


# -- errors of a task (exit 1, its out.log, the run's summary) -----------------------------------

TASK_ERRORS = {
    # generator: (task key, message in out.log and in the summary)
    "non_dict_return": ("py-list", "returned list; python calls return None or a dict"),
    "undeclared_return": ("py-undeclared", "returned undeclared variable 'zzz'"),
    "wrong_type_python": ("py-wrong-type", "output variable x=int given 'abc'"),
    "wrong_type_bash": ("wrong-type", "output variable x=int given 'abc'"),
    "file_not_produced": ("no-file", "output file f (output/no-file/f.txt) was not produced"),
    "var_never_set": ("no-var", "output variable x was never set"),
    "missing_input_file": ("reader", "input file f ("),
}
PY_TASK_ERRORS = ["non_dict_return", "undeclared_return", "wrong_type_python"]


def _check_task_error(inst, gen):
    key, message = TASK_ERRORS[gen]
    res = run(inst, gen)
    assert res.returncode == 1, res
    assert "Traceback" not in res.stderr and "drypipe: error:" not in res.stderr, res
    log = inst / ".drypipe" / key / "out.log"
    assert f"{key}: failed.0" in res.stderr and f"log: {log}" in res.stderr, res
    assert message in log.read_text() and key in log.read_text()
    assert assert_consistent(inst) == {key: "failed.0"}
    return res


def _fix_and_restart(inst, gen):
    key, _ = TASK_ERRORS[gen]
    if gen == "missing_input_file":
        (inst / "does-not-exist.txt").write_text("it exists now\n")
    else:
        (inst / "fixed").touch()
    res = run(inst, gen, "--restart-failed", quiet=True)
    assert res.returncode == 0, res
    assert assert_consistent(inst) == {key: "completed"}


@pytest.mark.parametrize("gen", [g for g in TASK_ERRORS if g not in PY_TASK_ERRORS])
def test_task_breaking_its_contract(instance_dir, gen):
    res = _check_task_error(instance_dir, gen)
    assert TASK_ERRORS[gen][1] in res.stderr, res  # in the summary too
    if gen == "missing_input_file":
        assert f"input file f ({instance_dir}/does-not-exist.txt) does not exist" in res.stderr
    _fix_and_restart(instance_dir, gen)


@pytest.mark.parametrize("gen", PY_TASK_ERRORS)
def test_python_call_breaking_its_contract(instance_dir, gen):
    _check_task_error(instance_dir, gen)
    assert f"task {TASK_ERRORS[gen][0]} step 0: " in out_log(instance_dir, TASK_ERRORS[gen][0])
    _fix_and_restart(instance_dir, gen)


@pytest.mark.parametrize("gen", PY_TASK_ERRORS)
def test_python_call_contract_error_is_in_the_run_summary(instance_dir, gen):
    res = run(instance_dir, gen)
    assert res.returncode == 1
    assert TASK_ERRORS[gen][1] in res.stderr, res


def test_fixing_a_failed_task_in_the_generator_then_reset_failed_runs_the_fix(instance_dir):
    res = run(instance_dir, "fixable_in_generator")
    assert res.returncode == 1 and "output file f (output/t/f.txt) was not produced" in res.stderr
    res = run(instance_dir, "fixable_in_generator", "--reset-failed", env=FIX, quiet=True)
    assert res.returncode == 0, res
    assert (instance_dir / "output" / "t" / "f.txt").read_text() == "fixed\n"


# -- waits that can never be satisfied ------------------------------------------------------------

def test_wait_for_matching_tasks_that_match_nothing(instance_dir):
    res = run(instance_dir, "unsatisfiable_glob_wait")
    assert res.returncode == 1 and "Traceback" not in res.stderr, res
    assert "dsl.wait_for_matching_tasks waits for 'no-such-*', which match no task" in res.stderr
    # reported once nothing else could progress: the other tasks ran first
    assert assert_consistent(instance_dir) == {"a": "completed", "b": "completed"}
    assert_fixed_run_works(instance_dir, "unsatisfiable_glob_wait", {"a", "b", "never"})


def test_wait_for_a_task_that_is_never_yielded(instance_dir):
    res = run(instance_dir, "unsatisfiable_key_wait")
    assert res.returncode == 1 and "Traceback" not in res.stderr, res
    assert "dsl.wait_for_tasks waits for 'ghost', which the generator never yields" in res.stderr
    assert assert_consistent(instance_dir) == {"a": "completed"}
    assert_fixed_run_works(instance_dir, "unsatisfiable_key_wait", {"a", "never"})


# -- the instance directory: not writable, newer DB ------------------------------------------------

def test_instance_dir_that_cannot_be_created(tmp_path, immutable):
    parent = tmp_path / "locked"
    parent.mkdir()
    immutable(parent)
    inst = parent / "inst"
    line = assert_error_line(run(inst, "good"), str(inst), "cannot create the instance directory")
    assert_verbose_traceback(run(inst, "good", verbose=True), line)
    release(parent)
    assert not inst.exists()
    assert_fixed_run_works(inst, "good", {"a", "b"})


@pytest.mark.parametrize("which", ["instance dir", ".drypipe"])
def test_existing_instance_that_is_not_writable(instance_dir, immutable, which):
    drypipe("prepare", "-pid", instance_dir, "--generator", f"{GEN}:good", cwd=REPO, check=True)
    target = instance_dir if which == "instance dir" else instance_dir / ".drypipe"
    immutable(target)
    line = assert_error_line(run(instance_dir, "good"), str(instance_dir), "instance directory is not writable")
    if which == "instance dir":
        assert_verbose_traceback(run(instance_dir, "good", verbose=True), line)
    release(target)
    assert assert_consistent(instance_dir, cli=True) == {"a": "ready", "b": "waiting"}
    assert_fixed_run_works(instance_dir, "good", {"a", "b"})


@pytest.mark.parametrize("which", [
    "instance dir",
    ".drypipe",
])
def test_instance_that_is_not_writable_can_still_be_inspected(instance_dir, immutable, which):
    """As a colleague with read-only access would: list-states and the API."""
    drypipe("run", "-q", "-pid", instance_dir, "--generator", f"{GEN}:good", cwd=REPO, check=True)
    immutable(instance_dir if which == "instance dir" else instance_dir / ".drypipe")
    res = drypipe("list-states", "-pid", instance_dir, cwd=REPO)
    assert res.returncode == 0 and "Traceback" not in res.stderr, res
    assert "2 tasks: 2 completed" in res.stdout
    assert assert_consistent(instance_dir) == {"a": "completed", "b": "completed"}


def test_database_file_that_is_not_writable(instance_dir, immutable):
    drypipe("prepare", "-pid", instance_dir, "--generator", f"{GEN}:good", cwd=REPO, check=True)
    db = instance_dir / ".drypipe" / "drypipe.db"
    immutable(db)
    res = run(instance_dir, "good")
    assert_error_line(res, "drypipe.db", "not writable")
    release(db)
    assert_fixed_run_works(instance_dir, "good", {"a", "b"})


def test_task_dir_that_is_not_writable(instance_dir, immutable):
    run(instance_dir, "good", "--until", "b", quiet=True)
    tdir = instance_dir / ".drypipe" / "b"
    tdir.mkdir()
    immutable(tdir)
    res = run(instance_dir, "good")
    assert res.returncode in (1, 2) and "Traceback" not in res.stderr, res
    assert " b: failed.0 - cannot write its task dir .drypipe/b" in res.stderr, res
    release(tdir)
    # a task that could not be launched is failed, and retried like any failed task
    assert run(instance_dir, "good", "--restart-failed", quiet=True).returncode == 0
    assert assert_consistent(instance_dir) == {"a": "completed", "b": "completed"}


def test_database_from_a_newer_drypipe(instance_dir):
    run(instance_dir, "good", quiet=True)
    db = instance_dir / ".drypipe" / "drypipe.db"
    con = sqlite3.connect(db)
    con.execute("UPDATE alembic_version SET version_num='9999'")
    con.commit()
    con.close()
    for args in (["run", "-pid", instance_dir, "--generator", f"{GEN}:good"], ["list-states", "-pid", instance_dir],
                 ["upgrade-drypipe", "-pid", instance_dir]):
        res = drypipe(*args, cwd=REPO)
        line = assert_error_line(res, str(db), "revision '9999' was written by a newer DryPipe", "upgrade drypipe")
    assert_verbose_traceback(drypipe("-v", *args, cwd=REPO), line)
    con = sqlite3.connect(db)
    assert con.execute("SELECT version_num FROM alembic_version").fetchone() == ("9999",)  # untouched
    from drypipe.state.db import SCHEMA_REVISION
    con.execute("UPDATE alembic_version SET version_num=?", (SCHEMA_REVISION,))  # what it was
    con.commit()
    con.close()
    assert assert_consistent(instance_dir) == {"a": "completed", "b": "completed"}
    assert_fixed_run_works(instance_dir, "good", {"a", "b"})


# -- corrupted state files ----------------------------------------------------------------------------

def _corrupt(tdir: Path, how: str, current: str) -> None:
    if how == "garbage":
        os.rename(tdir / f"state.{current}", tdir / "state.garbage")
    elif how == "deleted":
        os.unlink(tdir / f"state.{current}")
    elif how == "second":
        (tdir / "state.failed.0").touch()


def _start_sleeper(inst):
    return subprocess.Popen([sys.executable, "-m", "drypipe", "run", "-q", "-pid", str(inst),
                             "--generator", f"{GEN}:sleeper"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _repaired_or_reported(inst, res, key):
    """After a run on a corrupted state file: repaired to match the DB, or a one-line error naming the task."""
    assert "Traceback" not in res.stderr, res
    if res.returncode == 0:
        assert_consistent(inst, cli=True)
    else:
        line = assert_last_error_line(res)
        assert repr(key) in line or f"task {key}" in line, res
        assert drypipe("list-states", "-pid", inst, cwd=REPO).returncode == 0  # the DB still opens


@pytest.mark.parametrize("how", ["garbage", "deleted"])
def test_corrupted_state_file_of_a_running_task(instance_dir, how):
    """While the orchestrator watches: the task's next transition renames whatever is there."""
    proc = _start_sleeper(instance_dir)
    try:
        tdir = instance_dir / ".drypipe" / "slow"
        wait_until(lambda: (tdir / "state.step-started.0").exists(), what="slow to start")
        _corrupt(tdir, how, "step-started.0")
        (instance_dir / "go").touch()
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0 and "Traceback" not in err, err
    assert assert_consistent(instance_dir) == {"quick": "completed", "slow": "completed"}


def test_second_state_file_beside_a_running_task(instance_dir):
    proc = _start_sleeper(instance_dir)
    try:
        tdir = instance_dir / ".drypipe" / "slow"
        wait_until(lambda: (tdir / "state.step-started.0").exists(), what="slow to start")
        _corrupt(tdir, "second", "step-started.0")
        (instance_dir / "go").touch()
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert "Traceback" not in err, err
    res = run(instance_dir, "sleeper", quiet=True)
    _repaired_or_reported(instance_dir, res, "slow")


def test_corrupted_state_file_of_a_task_running_without_orchestrator(instance_dir):
    """The orchestrator is killed, the running task's state file is corrupted, a new run re-attaches."""
    proc = _start_sleeper(instance_dir)
    tdir = instance_dir / ".drypipe" / "slow"
    try:
        wait_until(lambda: (tdir / "state.step-started.0").exists(), what="slow to start")
    finally:
        proc.kill()
        proc.communicate(timeout=10)
    _corrupt(tdir, "garbage", "step-started.0")
    proc = _start_sleeper(instance_dir)  # re-attaches to 'slow', still running
    try:
        wait_until(lambda: (instance_dir / ".drypipe" / "orchestrator.lock").read_text().strip() == str(proc.pid),
                   what="the new orchestrator")
        (instance_dir / "go").touch()
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0 and "Traceback" not in err, err
    assert assert_consistent(instance_dir) == {"quick": "completed", "slow": "completed"}


@pytest.mark.parametrize("how", ["garbage", "deleted", "second"])
def test_corrupted_state_file_of_a_completed_task(instance_dir, how):
    run(instance_dir, "good", quiet=True)
    _corrupt(instance_dir / ".drypipe" / "a", how, "completed")
    res = run(instance_dir, "good", quiet=True)
    _repaired_or_reported(instance_dir, res, "a")


@pytest.mark.parametrize("how", ["garbage", "deleted"])
def test_corrupted_state_file_of_a_failed_task_then_restart_failed(instance_dir, how):
    run(instance_dir, "var_never_set", quiet=True)
    _corrupt(instance_dir / ".drypipe" / "no-var", how, "failed.0")
    (instance_dir / "fixed").touch()
    res = run(instance_dir, "var_never_set", "--restart-failed", quiet=True)
    assert res.returncode == 0, res
    assert assert_consistent(instance_dir) == {"no-var": "completed"}


# -- security: keys never write outside the instance dir -------------------------------------------

def _escaping(key: str, root: Path) -> str:
    """'/ABS' stands for an absolute path in the test's tmp dir."""
    return str(root / "abs-target") if key == "/ABS" else key


@pytest.mark.parametrize("gen,key", [("bad_key", "../x"), ("bad_key", "a/../../b"), ("bad_key", "/ABS"),
                                     ("bad_key_prefix", "../../")])
def test_generated_key_cannot_escape_the_instance_dir(tmp_path, gen, key):
    inst = tmp_path / "deep" / "er" / "inst"
    inst.parent.mkdir(parents=True)
    key = _escaping(key, tmp_path)
    before = tree(tmp_path)
    res = run(inst, gen, env={"BAD_KEY": key})
    assert_error_line(res, "invalid task key")
    assert tree(tmp_path, exclude=inst) == before, "something was created outside the instance dir"
    assert not list(inst.rglob("escaped.txt"))
    assert assert_consistent(inst) == {}


COMMANDS = {
    "restart --reset": ["restart", "--reset", "--wait"],
    "task": ["task"],
    "poll-task": ["poll-task"],
    "dump-env": ["dump-env"],
    "call": ["call", f"{GEN}:py_passes"],
}
# ../../x resolves outside the instance dir from .drypipe/ and from output/
OPTION_KEYS = ["../../x", "/ABS"]


@pytest.fixture(scope="module")
def finished_instance(tmp_path_factory):
    root = tmp_path_factory.mktemp("keys")
    inst = root / "deep" / "er" / "inst"
    assert run(inst, "good", quiet=True).returncode == 0
    return root, inst


def _check_key_option(root, inst, args, key):
    key = _escaping(key, root)
    before, inside = tree(root, exclude=inst), tree(inst)
    res = drypipe(*args, "-pid", inst, "--task-key", key, cwd=REPO, timeout=30)
    # refused as an invalid key (a path) or as an unknown one; either way naming it, in one line
    assert_error_line(res, f"invalid task key {key!r}" if "/" in key or ".." in key else f"no task {key!r}")
    assert tree(root, exclude=inst) == before, f"{args} -k {key}: something was created outside the instance dir"
    assert tree(inst) == inside, f"{args} -k {key}: the instance dir changed"


@pytest.mark.parametrize("command", list(COMMANDS))
def test_task_key_option_cannot_escape_the_instance_dir(finished_instance, command):
    root, inst = finished_instance
    for key in OPTION_KEYS + (["a/../../b"] if command == "restart --reset" else []):
        _check_key_option(root, inst, COMMANDS[command], key)
    assert assert_consistent(inst) == {"a": "completed", "b": "completed"}


def test_task_tail_key_option_cannot_escape_the_instance_dir(tmp_path):
    inst = tmp_path / "deep" / "er" / "inst"
    run(inst, "good", quiet=True)
    for key in OPTION_KEYS + ["no-such-task"]:
        _check_key_option(tmp_path, inst, ["task", "--tail"], key)


@pytest.mark.parametrize("command", ["poll-task", "dump-env"])
def test_task_key_option_is_not_a_path(finished_instance, command):
    root, inst = finished_instance
    res = drypipe(command, "-pid", inst, "--task-key", "a/../b", cwd=REPO)
    assert_error_line(res, "invalid task key 'a/../b'")


# -- security: values are never evaluated by a shell --------------------------------------------

def test_values_are_never_evaluated_by_a_shell(instance_dir, tmp_path):
    marks = [tmp_path / f"PWNED-{uuid.uuid4().hex}-{i}" for i in range(5)]
    value = (f"$(touch {marks[0]}) `touch {marks[1]}` ${{x:=$(touch {marks[2]})}} "
             f"'; touch {marks[3]}; ' \"; touch {marks[4]}; \" $((1+1)) *")
    res = run(instance_dir, "shell_values", env={"VALUE": value}, quiet=True)
    assert res.returncode == 1, res  # bad-int fails, quoting the value
    assert "bad-int: failed.0" in res.stderr
    # the launchers, by hand, and the commands that show a task's environment
    for key in ("up", "py", "down"):
        task = instance_dir / ".drypipe" / key / "task"
        assert subprocess.run([str(task), "env"], capture_output=True, timeout=30).returncode == 0
    assert drypipe("dump-env", "-pid", instance_dir, "--task-key", "down", cwd=REPO).returncode == 0
    drypipe("call", "-pid", instance_dir, "--task-key", "py", f"{GEN}:py_passes", cwd=REPO, check=True)
    assert subprocess.run([str(instance_dir / ".drypipe" / "bad-int" / "task")], capture_output=True,
                          timeout=30).returncode != 0
    assert [m for m in marks if m.exists()] == []
    out = instance_dir / "output"
    assert (out / "up" / "f.txt").read_text() == value
    assert (out / "down" / "a.txt").read_text() == value and (out / "down" / "b.txt").read_text() == value
    inst = Instance(str(instance_dir))
    assert inst.outputs("down") == {"r": value, "n": len(value)}


def test_values_cannot_forge_task_transitions(instance_dir):
    value = "abc\n2026-01-01T00:00:00 1.0 completed\n2026-01-01T00:00:00 2.0 error: forged"
    run(instance_dir, "shell_values", env={"VALUE": value}, quiet=True)
    con = sqlite3.connect(instance_dir / ".drypipe" / "drypipe.db")
    trans = [s for s, in con.execute("SELECT state FROM transitions WHERE key='bad-int'")]
    assert trans == ["launched", "step-started", "failed"], trans
    message = Instance(str(instance_dir)).task("bad-int").message
    assert message.startswith("output variable n=int given"), message


# -- security: generated files are not world-writable ------------------------------------------------

def _run_with_umask(inst, gen, umask):
    proc = subprocess.run([sys.executable, "-m", "drypipe", "run", "-q", "-pid", str(inst), "--generator",
                           f"{GEN}:{gen}"], cwd=REPO, capture_output=True, text=True, timeout=60,
                          preexec_fn=lambda: os.umask(umask))
    assert proc.returncode == 0, proc.stderr


def _generated(inst: Path) -> list[Path]:
    d = inst / ".drypipe"
    files = [d / "drypipe.db", d / "_runtime" / "task-runner.sh"]
    for key in ("a", "b"):
        files += [d / key / "task", d / key / "task-env.sh", d / key / "task-conf.json"]
        files += list((d / key).glob("state.*"))
    return files


def _world_writable(paths) -> dict[str, str]:
    return {str(p): oct(p.stat().st_mode & 0o777) for p in paths if p.stat().st_mode & 0o002}


def test_generated_files_are_not_world_writable(instance_dir):
    _run_with_umask(instance_dir, "good", 0o022)
    files = _generated(instance_dir)
    assert len(files) == 10
    dirs = [instance_dir, instance_dir / ".drypipe", instance_dir / ".drypipe" / "_runtime",
            instance_dir / ".drypipe" / "a", instance_dir / ".drypipe" / "b"]
    assert _world_writable(files + dirs) == {}


def test_generated_files_are_not_world_writable_whatever_the_umask(instance_dir):
    _run_with_umask(instance_dir, "good", 0o000)
    assert _world_writable(_generated(instance_dir)) == {}


def test_drypipe_dirs_are_not_world_writable_whatever_the_umask(instance_dir):
    _run_with_umask(instance_dir, "good", 0o000)
    d = instance_dir / ".drypipe"
    assert _world_writable([d, d / "_runtime", d / "a", d / "b"]) == {}
