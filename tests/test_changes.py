"""Why does it rerun? Out-of-date tasks, `drypipe why`, `--rerun-changed`, Instance.out_of_date()
(scheduler/changes.py, scheduler/fingerprint.py), judged by what users see: the run's summary,
why's lines, and how many times each task really executed (each appends its key to a file).

The pipeline is a module written into the test's own dir from TEMPLATE, and edited between
runs the way a user edits theirs."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from conftest import drypipe

TEMPLATE = '''
import os
from dry_pipe import DryPipe, TaskConf

LOG = 'echo "$__task_key" >> "$__pipeline_instance_dir/executions.txt"\\n'


@DryPipe.python_call()
def double(v):
    """Twice v."""
    with open(os.path.join(os.environ["__pipeline_instance_dir"], "executions.txt"), "a") as f:
        f.write("b\\n")
    return {"y": v * 2}  # PY_BODY


def dag(dsl):
    a = dsl.task(key="a").inputs(f=dsl.file(@INPUT@), x=@X@).outputs(v=int).calls(
        LOG + 'export v=$(( x + $(wc -c < "$f") ))\\n')()
    yield a
    b = dsl.task(key="b", task_conf=@B_CONF@).inputs(v=a.outputs.v).outputs(y=int).calls(double)()
    yield b
    yield dsl.task(key="c").inputs(y=b.outputs.y).calls(LOG + @C_CODE@)()
    yield dsl.task(key="lone").calls(LOG + @LONE_CODE@)()
    for _ in dsl.wait_for_tasks(a):
        for i in range(a.outputs.v.fetch() % 10):
            yield dsl.task(key=f"w.{i}").inputs(v=a.outputs.v, i=i).calls(LOG + 'echo $(( v * i )) > w.txt\\n')()
'''

SETTINGS = dict(X="3", B_CONF="TaskConf()", C_CODE=repr('echo "$y" > c.txt\n'), LONE_CODE=repr("true\n"))


def write_pipeline(d: Path, **changes) -> None:
    text = TEMPLATE.replace("@INPUT@", repr(str(d / "in.txt")))
    for name, value in {**SETTINGS, **changes}.items():
        text = text.replace(f"@{name}@", value)
    (d / "chpipe.py").write_text(text)


@pytest.fixture
def work(tmp_path):
    (tmp_path / "in.txt").write_text("12345")  # 5 bytes: a's v = x + 5 = 8, so w.0 .. w.7
    write_pipeline(tmp_path)
    return tmp_path


def run(work, *extra, check=None):
    return drypipe("run", "-q", "-pid", work / "inst", "--generator", "chpipe:dag", *extra, cwd=work,
                   check=check)


def executions(work) -> dict[str, int]:
    counts: dict[str, int] = {}
    for key in (work / "inst" / "executions.txt").read_text().split():
        counts[key] = counts.get(key, 0) + 1
    return counts


def out_of_date(res) -> dict[str, str]:
    """The summary's out-of-date lines: key -> reason."""
    lines = res.stderr.splitlines()
    for i, line in enumerate(lines):
        if "out of date, not rerun" in line:
            return dict(line.strip().split(": ", 1) for line in lines[i + 1:] if line.startswith("  "))
    return {}


def first_run(work):
    run(work, check=True)
    once = executions(work)
    assert once == {"a": 1, "b": 1, "c": 1, "lone": 1, **{f"w.{i}": 1 for i in range(8)}}
    return once


# -- each kind of change: listed, never rerun by itself ---------------------------------------------

@pytest.mark.parametrize("change, expected", [
    (dict(C_CODE=repr('echo "$y" >> c.txt\n')), {"c": "code changed"}),
    (dict(X="4"), {"a": "input x: 3 -> 4", "b": "upstream a is out of date", "c": "upstream b is out of date"}),
    (dict(B_CONF='TaskConf(extra_env={"K": "1"})'), {"b": "conf changed: extra_env", "c": "upstream b is out of date"}),
])
def test_a_change_is_listed_with_its_reason_and_nothing_reruns(work, change, expected):
    once = first_run(work)
    write_pipeline(work, **change)
    res = run(work, check=True)
    assert executions(work) == once  # nothing ran again
    ood = out_of_date(res)
    assert {k: v for k, v in ood.items() if not k.startswith("w.")} == expected, res.stderr
    if "a" in expected:  # the dynamic tasks consume a's output too
        assert all(ood[f"w.{i}"] == "upstream a is out of date" for i in range(8)), ood


def test_an_edited_input_file_and_an_edited_python_function(work):
    once = first_run(work)
    st = (work / "in.txt").stat()
    os.utime(work / "in.txt", ns=(1, 1))  # same size, another mtime
    res = run(work, check=True)
    assert out_of_date(res)["a"] == "input file f: size/mtime changed"
    os.utime(work / "in.txt", ns=(st.st_atime_ns, st.st_mtime_ns))  # as it was: up to date again
    text = (work / "chpipe.py").read_text()
    # a cosmetic edit of the bash snippets and of the python function: not out of date
    cosmetic = text.replace('return {"y": v * 2}  # PY_BODY', 'return {"y": v*2}    # a new comment').replace(
        '"""Twice v."""', '"""Twice v, said otherwise."""')
    (work / "chpipe.py").write_text(cosmetic.replace('echo "$y" > c.txt\\n', '  echo  "$y" > c.txt   # why not\\n'))
    res = run(work, check=True)
    assert out_of_date(res) == {}, res.stderr
    (work / "chpipe.py").write_text(text.replace('return {"y": v * 2}', 'return {"y": v * 3}'))
    res = run(work, check=True)
    assert out_of_date(res) == {"b": "code changed", "c": "upstream b is out of date"}
    assert executions(work) == once


# -- drypipe why -------------------------------------------------------------------------------

def test_why_gives_the_diff_the_values_the_files_and_the_upstream_chain(work):
    first_run(work)
    text = (work / "chpipe.py").read_text()
    (work / "chpipe.py").write_text(text.replace('return {"y": v * 2}', 'return {"y": v * 3}'))
    out = drypipe("why", "-pid", work / "inst", "-k", "c", cwd=work, check=True).stdout.splitlines()
    assert out[:2] == ["task c: out of date", "  upstream b is out of date"]
    assert "caused upstream: c <- b" in out
    b_at = out.index("task b:")
    assert out[b_at + 1] == "  code changed"
    diff = out[b_at + 2:]
    assert any(line.startswith("--- b chpipe:double (ran)") for line in diff)
    assert '-    return {"y": v * 2}  # PY_BODY' in diff and '+    return {"y": v * 3}  # PY_BODY' in diff
    # values, conf and files, key by key
    write_pipeline(work, X="4", B_CONF='TaskConf(extra_env={"K": "1"})')
    out = drypipe("why", "-pid", work / "inst", "-k", "a", cwd=work, check=True).stdout.splitlines()
    assert out[:2] == ["task a: out of date", "  input x: 3 -> 4"]
    assert any(re.match(rf"  f: {re.escape(str(work / 'in.txt'))} size=5 mtime_ns=\d+$", line) for line in out), out
    out = drypipe("why", "-pid", work / "inst", "-k", "b", cwd=work, check=True).stdout
    assert "  conf changed: extra_env" in out and "  conf extra_env: {} -> {'K': '1'}" in out
    # a task that is not out of date, and a cosmetic change
    write_pipeline(work, LONE_CODE=repr("true   # nothing to do\n"))
    out = drypipe("why", "-pid", work / "inst", "-k", "lone", cwd=work, check=True).stdout.splitlines()
    assert out[0] == "task lone: up to date"
    assert "cosmetic" in out[1] and "+true   # nothing to do" in out


def test_the_api_says_the_same(work):
    from drypipe import Instance
    first_run(work)
    write_pipeline(work, C_CODE=repr('echo "$y" >> c.txt\n'))
    inst = Instance(str(work / "inst"))
    import sys
    sys.path.insert(0, str(work))
    try:
        assert inst.out_of_date() == {"c": "code changed"}
        assert inst.why("c")[:2] == ["task c: out of date", "  code changed"]
        assert inst.why("a") == ["task a: up to date"]
    finally:
        sys.path.remove(str(work))
        sys.modules.pop("chpipe", None)


# -- --rerun-changed -----------------------------------------------------------------------------

def test_rerun_changed_reruns_exactly_the_changed_tasks_and_their_downstream(work):
    once = first_run(work)
    write_pipeline(work, C_CODE=repr('echo "$y" >> c.txt\n'), LONE_CODE=repr("true; true\n"))
    # GLOB: only c (and its downstream, none)
    res = run(work, "--rerun-changed", "c", check=True)
    assert executions(work) == {**once, "c": 2}
    assert out_of_date(res) == {"lone": "code changed"}  # still out of date, not rerun
    res = run(work, "--rerun-changed", check=True)
    assert executions(work) == {**once, "c": 2, "lone": 2}
    assert out_of_date(res) == {}
    # an upstream change: a and everything below it, once each
    write_pipeline(work, C_CODE=repr('echo "$y" >> c.txt\n'), LONE_CODE=repr("true; true\n"), B_CONF='TaskConf(extra_env={"K": "1"})')
    run(work, "--rerun-changed", check=True)
    assert executions(work) == {**once, "b": 2, "c": 3, "lone": 2}


def test_rerun_changed_regenerates_a_dynamic_downstream(work):
    once = first_run(work)
    write_pipeline(work, X="4")  # v = 9: w.0 .. w.8 now
    res = run(work, "--rerun-changed", check=True)
    assert "Traceback" not in res.stderr
    assert executions(work) == {**{k: 2 for k in once}, "lone": 1, "w.8": 1}
    assert (work / "inst" / "output" / "w.8" / "w.txt").read_text().strip() == str(9 * 8)
    assert (work / "inst" / "output" / "w.1" / "w.txt").read_text().strip() == "9"
    assert out_of_date(run(work, check=True)) == {}


def test_why_on_bad_input_says_so_in_one_line(work, tmp_path):
    res = drypipe("why", "-pid", tmp_path / "nowhere", "-k", "a", cwd=work, check=False)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines() == [f"drypipe: error: {tmp_path / 'nowhere'}: not a pipeline instance "
                                               "(no .drypipe/drypipe.db)"]
    first_run(work)
    res = drypipe("why", "-pid", work / "inst", "-k", "nope", cwd=work, check=False)
    assert res.returncode == 2 and res.stderr.strip().splitlines() == [
        "drypipe: error: no task 'nope' in this instance (`drypipe list-states` lists them)"]
