"""The examples of the guide's "Writing Pipelines" section (examples/guide_*.py) and the demo
(examples/demo.py), each run through the real CLI, checking the files, variables and states
a user would look at."""
from __future__ import annotations

import ast
import json
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import EXAMPLES, REPO, drypipe, state_files

STEP_STATES = ("step-started", "failed", "killed", "timed-out")


# -- helpers ----------------------------------------------------------------------------------

def run(generator, instance, *extra, cwd=EXAMPLES, env=None, check=True):
    """drypipe run --pipeline-instance-dir INSTANCE --generator GENERATOR, from the examples dir."""
    return drypipe("run", "--pipeline-instance-dir", instance, "--generator", generator, *extra,
                   cwd=cwd, env=env, check=check)


def db_states(instance: Path) -> dict[str, str]:
    """Task key -> state name (as in state files), read from the documented `tasks` SQL view."""
    con = sqlite3.connect(instance / ".drypipe" / "drypipe.db")
    try:
        rows = con.execute("SELECT key, state, step FROM tasks").fetchall()
    finally:
        con.close()
    return {k: (f"{s}.{step}" if s in STEP_STATES else s) for k, s, step in rows}


def assert_states(instance: Path, expected: dict[str, str]) -> None:
    """Exactly these tasks, each with exactly one state file, equal to its state in the DB."""
    assert state_files(instance) == {k: [f"state.{s}"] for k, s in expected.items()}
    assert db_states(instance) == expected


def assert_all_completed(instance: Path, keys) -> None:
    assert_states(instance, {k: "completed" for k in keys})


def instance_api(instance: Path):
    from drypipe import Instance
    return Instance(str(instance))


def outputs(instance: Path, key: str) -> dict:
    return instance_api(instance).outputs(key)


def task_info(instance: Path, key: str):
    return instance_api(instance).task(key)


def out_log(instance: Path, key: str) -> str:
    return (instance / ".drypipe" / key / "out.log").read_text()


def output_file(instance: Path, key: str, name: str) -> str:
    return (instance / "output" / key / name).read_text()


def task_conf(instance: Path, key: str) -> dict:
    return json.loads((instance / ".drypipe" / key / "task-conf.json").read_text())["conf"]


def typed(value, type_):
    """value, asserting its exact type (so that 1 == 1.0 == True cannot hide a wrong type)."""
    assert type(value) is type_, f"{value!r} is a {type(value).__name__}, expected {type_.__name__}"
    return value


def parse_fasta(text: str) -> list[tuple[str, str]]:
    records = []
    for line in text.splitlines():
        if line.startswith(">"):
            records.append((line, ""))
        else:
            header, seq = records[-1]
            records[-1] = (header, seq + line)
    return records


# -- The DryPipe DSL: Tasks -----------------------------------------------------------------

def test_intro_python_calls_pass_a_typed_variable_and_write_a_file(instance_dir):
    # the guide's own command line: -p and --instance-directory=
    drypipe("run", "-p", "guide_intro:my_pipeline", f"--instance-directory={instance_dir}",
            cwd=EXAMPLES, check=True)
    assert_all_completed(instance_dir, ["t1", "t2"])
    assert typed(outputs(instance_dir, "t1")["x"], int) == 123
    assert outputs(instance_dir, "t2")["f"] == str(instance_dir / "output" / "t2" / "f.tsv")
    assert output_file(instance_dir, "t2", "f.tsv") == "...123"


# -- The DAG ----------------------------------------------------------------------------------

def test_dag_bash_then_python_calls(instance_dir):
    run("guide_dag:my_dag_generator", instance_dir)
    assert_all_completed(instance_dir, ["t1", "t2", "t3"])
    t1 = outputs(instance_dir, "t1")
    assert typed(t1["x"], int) == 123
    assert json.loads(Path(t1["z"]).read_text()) == {"i": "abc", "a": [56, 57]}
    assert output_file(instance_dir, "t2", "f.tsv") == "x\tx_squared\n123\t15129\n"
    assert output_file(instance_dir, "t3", "pipeline-result.tsv") == \
        "i\tsum_a\tx\tx_squared\nabc\t113\t123\t15129\n"
    t3 = task_info(instance_dir, "t3")
    assert t3.launched_at >= task_info(instance_dir, "t1").ended_at
    assert t3.launched_at >= task_info(instance_dir, "t2").ended_at


# -- Dividing work into smaller chunks ------------------------------------------------------

def test_dividing_work_independent_tasks_run_in_parallel(instance_dir):
    run("guide_dividing_work:my_pipeline_dag_generator", instance_dir, "-j", "2")
    assert_all_completed(instance_dir, ["t1", "t2"])
    assert output_file(instance_dir, "t1", "a-file.txt") == "hello\n"
    assert output_file(instance_dir, "t2", "another-file.txt") == "world\n"
    t1, t2 = task_info(instance_dir, "t1"), task_info(instance_dir, "t2")
    # neither waited for the other: each was launched before the other ended
    assert t1.launched_at <= t2.ended_at and t2.launched_at <= t1.ended_at


# -- File dependencies between Tasks ---------------------------------------------------------

def test_file_dependency_t2_reads_the_file_of_t1(instance_dir):
    run("guide_file_deps:my_pipeline_dag_generator", instance_dir)
    assert_all_completed(instance_dir, ["t1", "t2"])
    assert output_file(instance_dir, "t1", "f.txt") == "15129\n"
    assert output_file(instance_dir, "t2", "final-result.txt") == "we got data from t1: 15129\n"
    assert task_info(instance_dir, "t2").launched_at >= task_info(instance_dir, "t1").ended_at


def test_script_call_is_found_in_the_pipeline_code_dir(instance_dir):
    run("guide_script_call:my_pipeline_dag_generator", instance_dir)
    assert_all_completed(instance_dir, ["t1", "t2"])
    assert f"my-script.sh running from {EXAMPLES} for task t1" in out_log(instance_dir, "t1")
    assert output_file(instance_dir, "t1", "f.txt") == "15129\n"
    assert typed(outputs(instance_dir, "t1")["squared"], int) == 15129
    assert output_file(instance_dir, "t2", "final-result.txt") == \
        "t1 wrote: 15129, and exported squared=15129\n"


def test_script_call_missing_from_the_pipeline_code_dir_is_an_error(tmp_path, instance_dir):
    code = tmp_path / "code"
    code.mkdir()
    shutil.copy(EXAMPLES / "guide_script_call.py", code)  # without my-script.sh
    res = run("guide_script_call:my_pipeline_dag_generator", instance_dir, cwd=code, check=False)
    assert res.returncode == 2, res
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("drypipe: error:") and "my-script.sh" in last, res
    assert not (instance_dir / "output" / "t1" / "f.txt").exists()


# -- Variable dependencies between Tasks -----------------------------------------------------

def test_variable_dependency_with_bash(instance_dir):
    run("guide_var_deps_bash:my_pipeline_dag_generator", instance_dir)
    assert_all_completed(instance_dir, ["t1", "t2"])
    assert "all variables in the consumes(...) clause are in the env 123, 3.14159265359, abc" \
        in out_log(instance_dir, "t1")
    result = typed(outputs(instance_dir, "t1")["result"], float)
    assert result == pytest.approx(123 * 3.14159265359, rel=1e-12)
    text = output_file(instance_dir, "t2", "final-result.txt")
    prefix = "we got data from t1: "
    assert text.startswith(prefix) and text.endswith("\n")
    assert float(text[len(prefix):]) == result


def test_variable_dependency_with_python_calls(instance_dir):
    run("guide_var_deps_python:my_pipeline_dag_generator", instance_dir)
    assert_all_completed(instance_dir, ["t1", "t2"])
    log = out_log(instance_dir, "t1")
    assert "all variables in the consumes(...) clause are in the env 123, 3.14159265359, abc\n" in log
    assert "Wow, x has the correct type !\n" in log
    assert "Something is seriously wrong" not in log
    assert ("one could grab vars from the environment, but\n"
            "receiving pre parsed arguments is more convenient !\n") in log
    result = typed(outputs(instance_dir, "t1")["result"], float)
    assert result == 123 * 3.14159265359
    assert output_file(instance_dir, "t2", "final-result.txt") == f"we got data from t1: {123 * 3.14159265359}"


def _guide_literal(tmp_path, module, replacements):
    """A copy of an example module, in tmp_path, with the guide's literal code put back."""
    text = (EXAMPLES / f"{module}.py").read_text()
    for old, new in replacements:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    (tmp_path / f"{module}.py").write_text(text)


@pytest.mark.parametrize("module, replacements, message", [
    ("guide_var_deps_bash",
     [("result=float", "result=int"),
      ("""$(awk -v x="$x" -v y="$y" 'BEGIN { printf "%.10f", x * y }')""", "$(( x * y ))")],
     "syntax error: invalid arithmetic operator"),
    ("guide_var_deps_python", [("result=float", "result=int")],
     f"output variable result=int given '{123 * 3.14159265359!r}'"),
])
def test_variable_dependency_as_literally_in_the_guide_fails_t1(tmp_path, instance_dir, module,
                                                                 replacements, message):
    # why the examples declare result=float: x * y with y=3.14159265359 is not an int
    _guide_literal(tmp_path, module, replacements)
    res = run(f"{module}:my_pipeline_dag_generator", instance_dir, cwd=tmp_path, check=False)
    assert res.returncode == 1, res
    assert str(instance_dir / ".drypipe" / "t1" / "out.log") in res.stdout + res.stderr
    assert message in out_log(instance_dir, "t1")
    assert state_files(instance_dir) == {"t1": ["state.failed.0"]}  # t2 never launched
    assert db_states(instance_dir) == {"t1": "failed.0", "t2": "waiting"}
    assert "result" not in outputs(instance_dir, "t1")


# -- Semi hardcoded DAGs ---------------------------------------------------------------------

@pytest.mark.parametrize("generator, numbers", [
    ("guide_semi_hardcoded:pipeline_1_2_3", [1, 2, 3]),
    ("guide_semi_hardcoded:pipeline_7_8_9_543", [7, 8, 9, 543]),
])
def test_semi_hardcoded_pipelines_share_one_generator(instance_dir, generator, numbers):
    drypipe("run", "-p", generator, "-pid", instance_dir, cwd=EXAMPLES, check=True)
    assert_all_completed(instance_dir, [f"square-{i}" for i in numbers])
    for i in numbers:
        assert output_file(instance_dir, f"square-{i}", "file_with_squared_number.txt") == f"{i * i}\n"


# -- Input file driven DAGs --------------------------------------------------------------------

def test_input_file_named_by_an_env_var_drives_the_dag(tmp_path, instance_dir):
    tsv = tmp_path / "my-input.tsv"
    tsv.write_text("a\tfirst\nb\tsecond one\n7\tthird\n")
    run("guide_input_file_env:dag_gen", instance_dir, env={"MY_INPUT_DATA_FILE_TSV": str(tsv)})
    assert_all_completed(instance_dir, ["t-a", "t-b", "t-7"])
    assert output_file(instance_dir, "t-a", "result.txt") == "compute data for first\n"
    assert output_file(instance_dir, "t-b", "result.txt") == "compute data for second one\n"
    assert output_file(instance_dir, "t-7", "result.txt") == "compute data for third\n"


def test_input_file_seeded_in_the_instance_dir_drives_the_dag(instance_dir):
    instance_dir.mkdir()
    shutil.copy(EXAMPLES / "dataset.tsv", instance_dir)
    # the guide's command line: -p and --instance-dir=
    drypipe("run", "-p", "guide_input_file_instance_dir:my_pipeline", f"--instance-dir={instance_dir}",
            cwd=EXAMPLES, check=True)
    assert_all_completed(instance_dir, ["t-1", "t-2", "t-3"])
    assert output_file(instance_dir, "t-1", "result.txt") == "compute data for chimp\n"
    assert output_file(instance_dir, "t-2", "result.txt") == "compute data for bonobo\n"
    assert output_file(instance_dir, "t-3", "result.txt") == "compute data for gorilla gorilla\n"


def test_input_file_not_seeded_is_a_one_line_error(instance_dir):
    res = run("guide_input_file_instance_dir:my_pipeline", instance_dir, check=False)
    assert res.returncode == 2, res
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("drypipe: error:") and "dataset.tsv" in last, res
    assert "Traceback" not in res.stderr


# -- DAG driven by task execution: fileset fan-out, wait_for_matching_tasks fan-in -------------

def test_fileset_fan_out_and_fan_in(instance_dir):
    instance_dir.mkdir()
    shutil.copy(EXAMPLES / "chimp.fasta", instance_dir)
    run("guide_fileset_fanout:dag_gen", instance_dir)

    records = parse_fasta((EXAMPLES / "chimp.fasta").read_text())
    chunks = [records[i:i + 3] for i in range(0, len(records), 3)]
    assert len(chunks) == 4
    n = range(1, len(chunks) + 1)
    assert_all_completed(instance_dir, ["prepare-chunks", *(f"task-for-chunk.{c}" for c in n),
                                        "analyze-all-work-pieces"])

    prep_out = instance_dir / "output" / "prepare-chunks"
    assert sorted(p.name for p in prep_out.iterdir()) == sorted(f"work-chunk.{c}.fasta" for c in n)
    results = []
    for c, chunk in zip(n, chunks):
        chunk_path = prep_out / f"work-chunk.{c}.fasta"
        assert parse_fasta(chunk_path.read_text()) == chunk
        assert f"work on {chunk_path}\n" in out_log(instance_dir, f"task-for-chunk.{c}")
        res = json.loads(output_file(instance_dir, f"task-for-chunk.{c}", "results.json"))
        assert res == {"chunk": f"work-chunk.{c}.fasta", "sequences": len(chunk),
                       "bases": sum(len(seq) for _, seq in chunk)}
        results.append((res, instance_dir / "output" / f"task-for-chunk.{c}" / "results.json"))

    # bash step: `ls` of the explicit glob and of $pattern_for_all_chunks list the same files
    listing = [str(p) for _, p in results]
    assert out_log(instance_dir, "analyze-all-work-pieces").splitlines() == listing + listing
    # python step: the glob arrived as a callable returning the sorted paths
    final = output_file(instance_dir, "analyze-all-work-pieces", "final-result-file").splitlines()
    assert final[:-1] == [f"got {res} from chunk {p}" for res, p in results]
    assert final[-1] == f"total: {len(records)} sequences, {sum(len(s) for _, s in records)} bases"


# -- When NOT to use dsl.wait_for: fetching a value in the generator ---------------------------

def test_generator_fetches_an_upstream_value_to_configure_a_task(instance_dir):
    run("guide_wait_for_value:my_dag_generator", instance_dir)
    waited = ["task-a", "task-b", "task-prefix-alpha", "task-prefix-beta", "task-prefix-gamma",
              "other-task-prefix-1", "other-task-prefix-2"]
    assert_all_completed(instance_dir, waited + ["highly-dependent-task"])
    assert typed(outputs(instance_dir, "task-a")["x"], int) == 1234
    assert [typed(outputs(instance_dir, f"task-prefix-{w}")["letters"], int)
            for w in ("alpha", "beta", "gamma")] == [5, 4, 5]
    assert output_file(instance_dir, "highly-dependent-task", "report.txt") == \
        "x=1234 total_letters=14 n_other=2\n"
    conf = task_conf(instance_dir, "highly-dependent-task")
    assert conf["executer_type"] == "process"
    assert conf["slurm_account"] == "me"
    assert conf["sbatch_options"] == ["--time=2:04:00"]  # 1234 units: 124 minutes
    launched = task_info(instance_dir, "highly-dependent-task").launched_at
    assert all(launched >= task_info(instance_dir, k).ended_at for k in waited)


# -- Pipeline composition ----------------------------------------------------------------------

def test_composed_sub_pipelines_get_prefixed_keys_and_feed_the_finale(instance_dir):
    run("guide_composition:my_composite_dag_generator", instance_dir)
    assert_all_completed(instance_dir, [
        "s_prepare", "s_a-super-task", "o_do-it-1", "o_do-it-2", "o_do-it-3",
        "task-dependent-on-a-super-task", "grande-finale"])
    assert typed(outputs(instance_dir, "s_a-super-task")["a_variable"], int) == 21
    # y=dsl.val(v) arrived as the int 21: a_func returned y * 2
    assert typed(outputs(instance_dir, "task-dependent-on-a-super-task")["z"], int) == 42
    assert output_file(instance_dir, "o_do-it-2", "do-it.txt") == "do-it 2: 200\n"
    assert output_file(instance_dir, "grande-finale", "grande-finale.txt") == \
        "z=42\ndo-it 1: 100\ndo-it 2: 200\ndo-it 3: 300\n"


# -- Pipeline level configs ---------------------------------------------------------------------

def test_pipeline_level_code_dir_containers_dir_and_default_task_conf(instance_dir):
    run("guide_pipeline_config:my_pipeline", instance_dir)
    assert_all_completed(instance_dir, ["task-123", "task-z"])
    code_dir = EXAMPLES / "pipeline_config_code"
    assert output_file(instance_dir, "task-123", "greeting.txt") == (
        f"hello world from {code_dir}/hello.sh\n"
        "GREETING=hello from the pipeline's TaskConf\n"
        f"code dir: {code_dir}\n"
        f"containers dir: {EXAMPLES / 'containers'}\n")
    assert output_file(instance_dir, "task-z", "greeting.txt") == "GREETING=<unset>\n"
    assert out_log(instance_dir, "task-123") == "hello world\n"
    assert out_log(instance_dir, "task-z") == "hello world\n"
    default, own = task_conf(instance_dir, "task-123"), task_conf(instance_dir, "task-z")
    assert (default["executer_type"], default["slurm_account"]) == ("process", "my-slurm-account")
    assert default["extra_env"] == {"GREETING": "hello from the pipeline's TaskConf"}
    assert (own["executer_type"], own["slurm_account"], own["extra_env"]) == ("process", None, {})


# -- DryPipe variables ----------------------------------------------------------------------------

def _read_vars(instance_dir, name):
    return dict(line.split("=", 1) for line in output_file(instance_dir, "print-env", name).splitlines())


def _expected_vars(instance_dir, scratch):
    out = instance_dir / "output" / "print-env"
    return {
        "__pipeline_instance_dir": str(instance_dir),
        "__task_key": "print-env",
        "__task_output_dir": str(out),
        "__out_log": str(instance_dir / ".drypipe" / "print-env" / "out.log"),
        "__scratch_dir": str(scratch or out / "scratch"),
        "__pipeline_code_dir": str(EXAMPLES),
        "__containers_dir": str(EXAMPLES / "containers"),
        "cwd": str(out),
    }


def test_drypipe_variables_of_a_task(instance_dir, monkeypatch):
    monkeypatch.delenv("SLURM_TMPDIR", raising=False)
    run("guide_env_vars:my_pipeline", instance_dir)
    assert_all_completed(instance_dir, ["print-env"])
    expected = _expected_vars(instance_dir, None)
    assert _read_vars(instance_dir, "drypipe-vars.txt") == {**expected, "scratch_dir_exists": "yes"}
    assert _read_vars(instance_dir, "drypipe-vars-python.txt") == expected
    assert out_log(instance_dir, "print-env") == f"this line goes to {expected['__out_log']}\n"


def test_scratch_dir_is_slurm_tmpdir_when_set(tmp_path, instance_dir):
    slurm_tmp = tmp_path / "slurm-tmp"
    slurm_tmp.mkdir()
    run("guide_env_vars:my_pipeline", instance_dir, env={"SLURM_TMPDIR": str(slurm_tmp)})
    expected = _expected_vars(instance_dir, slurm_tmp)
    assert _read_vars(instance_dir, "drypipe-vars.txt") == {**expected, "scratch_dir_exists": "yes"}
    assert _read_vars(instance_dir, "drypipe-vars-python.txt") == expected


# -- The demo of `make demo` -----------------------------------------------------------------------

def test_demo_runs_from_the_repo_root_like_make_demo(instance_dir):
    # the command of `make demo`, from the repo root
    drypipe("run", "--pipeline-instance-dir", instance_dir, "--generator", "examples.demo:pipeline",
            cwd=REPO, check=True)
    samples = ["chimp", "bonobo", "gorilla", "orangutan"]
    out = instance_dir / "output"
    chunk_keys = {s: sorted(k for k in db_states(instance_dir) if k.startswith(f"gc.{s}."))
                  for s in samples}
    keys = [k for s in samples for k in (f"simulate.{s}", f"split.{s}", f"summarize.{s}", *chunk_keys[s])]
    assert 20 <= len(keys) + 1 <= 40
    assert_all_completed(instance_dir, keys + ["report"])

    report = output_file(instance_dir, "report", "report.tsv").splitlines()
    assert report[0] == "sample\tchunks\tbases\tgc\tgc_fraction"
    rows = {r[0]: r for r in (line.split("\t") for line in report[1:])}
    assert sorted(rows) == sorted(samples)
    fractions = [float(line.split("\t")[4]) for line in report[1:]]
    assert fractions == sorted(fractions)
    for s in samples:
        sim = outputs(instance_dir, f"simulate.{s}")
        reads = Path(sim["reads"]).read_text()
        records = parse_fasta(reads)
        assert typed(sim["total_bases"], int) == sum(len(seq) for _, seq in records)
        assert re.fullmatch(r"[0-9a-f]{32}", typed(sim["checksum"], str))
        # the fileset fan-out: one gc task per chunk of 20 reads, chunks adding up to the reads
        chunk_files = sorted((out / f"split.{s}").glob("chunk.*.fasta"))
        assert len(chunk_files) == len(chunk_keys[s]) == -(-len(records) // 20)
        assert "".join(p.read_text() for p in chunk_files) == reads
        gc = [outputs(instance_dir, k) for k in chunk_keys[s]]
        bases = sum(typed(g["bases"], int) for g in gc)
        gc_total = sum(typed(g["gc"], int) for g in gc)
        assert bases == sim["total_bases"]
        assert gc_total == sum(seq.count("G") + seq.count("C") for _, seq in records)
        fraction = typed(outputs(instance_dir, f"summarize.{s}")["gc_fraction"], float)
        assert fraction == gc_total / bases
        assert rows[s] == [s, str(len(chunk_files)), str(bases), str(gc_total), f"{fraction:.4f}"]


# -- every example is tested ------------------------------------------------------------------------

def _top_level(path: Path) -> tuple[set[str], set[str]]:
    """(function names defined at top level, modules imported) of a python file."""
    tree = ast.parse(path.read_text())
    functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    imports = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.ImportFrom) and n.module:
            imports.add(n.module)
        elif isinstance(n, ast.Import):
            imports.update(a.name for a in n.names)
    return functions, imports


def test_every_example_module_is_run_by_a_test():
    modules = {p.stem: p for p in EXAMPLES.glob("*.py")}
    tests_text = Path(__file__).read_text() + (Path(__file__).parent / "test_service.py").read_text()
    specs = set(re.findall(r"""["']((?:examples\.)?[A-Za-z_]\w*):([A-Za-z_]\w*)["']""", tests_text))
    run_by_tests = {}
    for mod, fn in specs:
        mod = mod.removeprefix("examples.")
        if mod in modules:
            run_by_tests.setdefault(mod, set()).add(fn)
    exercised = set()
    todo = list(run_by_tests)
    while todo:  # and the example modules those import (sub pipelines)
        mod = todo.pop()
        if mod in exercised:
            continue
        exercised.add(mod)
        functions, imports = _top_level(modules[mod])
        assert run_by_tests.get(mod, set()) <= functions, f"{mod}: no such function"
        todo.extend(m.removeprefix("examples.") for m in imports if m.removeprefix("examples.") in modules)
    assert "demo" in run_by_tests
    untested = sorted(set(modules) - exercised)
    assert not untested, f"example modules not run by any test in {Path(__file__).name} or test_service.py: {untested}"


# -- regressions: engine bugs found while writing the examples -------------------------------------

def test_importing_dry_pipe_is_as_cheap_as_importing_drypipe():
    code = "import sys, dry_pipe; print('sqlalchemy' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "False"


REPRO_SHADOWED_NAMES = '''
def gen(dsl):
    yield dsl.task(key="in-n").inputs(n=5, start=7, rc=9).outputs(f=dsl.file("f.txt")).calls(
        'echo "n=$n start=$start rc=$rc" > $f')()
    yield dsl.task(key="out-n").outputs(n=int).calls("export n=4")()
'''


def test_inputs_and_outputs_may_be_named_n_start_rc(tmp_path, instance_dir):
    (tmp_path / "repro_shadowed_names.py").write_text(REPRO_SHADOWED_NAMES)
    res = run("repro_shadowed_names:gen", instance_dir, cwd=tmp_path, check=None)
    assert (instance_dir / "output" / "in-n" / "f.txt").read_text() == "n=5 start=7 rc=9\n"
    assert res.returncode == 0, res
    assert_all_completed(instance_dir, ["in-n", "out-n"])
    assert typed(outputs(instance_dir, "out-n")["n"], int) == 4
