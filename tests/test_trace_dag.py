"""`drypipe dag` and `drypipe trace` through the real CLI on real instance dirs, and the CPU and
peak memory columns of `report-execution-times`.

- dag: the guide's three-task example gives exactly the guide's flowchart; --group draws a
  fan-out / fan-in pipeline with a node per key pattern; node ids are valid and distinct.
- trace: one row per attempt (a failed one with its exit status, its rerun as attempt 2); its
  JSON, its TSV and the `attempts` view have the same rows and values.
- both on a missing instance: a one-line error, exit 2.
"""
import json
import re
import sqlite3

import pytest

from conftest import EXAMPLES, REPO, drypipe
from drypipe import Instance
from drypipe.observe.dag import build_dag, group_edge_label, key_pattern, node_ids, render
from drypipe.observe.trace import COLUMNS
from drypipe.reports import fmt_bytes, fmt_seconds

GEN = "tests.pipelines.trace_dag"

GUIDE_DAG = """\
flowchart LR
t1(["t1"])
t2(["t2"])
t3(["t3"])
t1-->|"x: int"|t2
t2-->|"f.tsv"|t3
t1-->|"z.json"|t3
"""

NODE = re.compile(r'([A-Za-z0-9_]+)\(\["([^"]*)"\]\)\Z')
EDGE = re.compile(r'([A-Za-z0-9_]+)-->\|"([^"]*)"\|([A-Za-z0-9_]+)\Z')


def dp(*args, **kw):
    return drypipe(*args, cwd=REPO, **kw)


def run(inst, gen, *extra, check=True):
    return dp("run", "-q", "-pid", inst, "--generator", f"{GEN}:{gen}", *extra, check=check)


def parse_flowchart(text):
    """(nodes {id: label} in order, edges [(from, label, to)]); every line is a node or an edge."""
    lines = text.splitlines()
    assert lines[0] == "flowchart LR", text
    nodes, edges = {}, []
    for line in lines[1:]:
        if m := NODE.match(line):
            assert m.group(1) not in nodes, f"node id {m.group(1)} twice"
            nodes[m.group(1)] = m.group(2)
        else:
            m = EDGE.match(line)
            assert m, f"not a node nor an edge: {line!r}"
            assert m.group(1) in nodes and m.group(3) in nodes, line
            edges.append(m.groups())
    return nodes, edges


# ---- drypipe dag --------------------------------------------------------------------------------

def test_dag_of_the_guide_example_is_the_guide_flowchart(tmp_path):
    inst = tmp_path / "run-dag"
    drypipe("run", "-q", "-pid", inst, "--generator", "guide_dag:my_dag_generator", cwd=EXAMPLES, check=True)
    res = dp("dag", "-pid", inst, check=True)
    assert res.stdout == GUIDE_DAG
    assert res.stderr == ""
    assert dp("dag", "-pid", inst, "--format", "mermaid", check=True).stdout == GUIDE_DAG
    # the grouped DAG of keys without numbered components is the same DAG
    assert dp("dag", "-pid", inst, "--group", check=True).stdout == GUIDE_DAG


@pytest.fixture(scope="module")
def fan_instance(tmp_path_factory):
    inst = tmp_path_factory.mktemp("fan") / "instance"
    run(inst, "fan")
    return inst


def test_dag_of_a_fan_out_and_fan_in(fan_instance):
    nodes, edges = parse_flowchart(dp("dag", "-pid", fan_instance, check=True).stdout)
    keys = ["split"] + [k for n in range(1, 6) for k in (f"square.{n}", f"report-{n}")] + ["sum"]
    assert list(nodes.values()) == keys  # creation order
    ids = {label: nid for nid, label in nodes.items()}
    assert ids["square.1"] == "square_1" and ids["report-1"] == "report_1"
    named = [(nodes[a], label, nodes[b]) for a, label, b in edges]
    expected = []
    for n in range(1, 6):
        expected += [("split", f"part.{n}.txt", f"square.{n}"), (f"square.{n}", "sq: int", f"report-{n}")]
    # the glob over the squares' output dirs: an edge from each square, in creation order
    expected += [(f"square.{n}", "sq.txt", "sum") for n in range(1, 6)]
    assert named == expected


def test_dag_grouped_by_key_pattern(fan_instance):
    res = dp("dag", "-pid", fan_instance, "--group", check=True)
    assert res.stdout == """\
flowchart LR
split(["split"])
square(["square.* (5 tasks)"])
report(["report-* (5 tasks)"])
sum(["sum"])
split-->|"part.*.txt (5 edges)"|square
square-->|"sq: int (5 edges)"|report
square-->|"sq.txt (5 edges)"|sum
"""
    parse_flowchart(res.stdout)


def test_dag_of_a_partly_failed_run_shows_the_tasks_generated_so_far(tmp_path):
    inst = tmp_path / "instance"
    run(inst, "fails", check=False)
    nodes, edges = parse_flowchart(dp("dag", "-pid", inst, check=True).stdout)
    assert list(nodes.values()) == ["ok", "bad", "after-bad"]
    assert edges == [("ok", "n: int", "bad"), ("bad", "m: int", "after_bad")]


def test_key_patterns_node_ids_and_labels():
    assert key_pattern("task-for-chunk.12") == "task-for-chunk.*"
    assert key_pattern("sample.3.align-2") == "sample.*.align-*"
    assert key_pattern("chunk_07") == "chunk_*"
    assert [key_pattern(k) for k in ("t1", "s1.align", "v2x.3a", "prepare-chunks")] == \
        ["t1", "s1.align", "v2x.3a", "prepare-chunks"]
    # valid mermaid ids, distinct, keys that are valid ids kept; mermaid's keywords avoided
    assert node_ids(["a.1", "a-1", "a_1", "t1", "end", "End", "x-", "Z"]) == \
        ["a_1", "a_1_2", "a_1_3", "t1", "end_", "End_", "x", "Z"]
    assert group_edge_label(["x: int", "z.json"]) == "x: int, z.json"
    assert group_edge_label(["f.1.txt", "f.2.txt", "g.txt", "h.1"]) == "f.*.txt, g.txt, h.* (4 edges)"
    assert group_edge_label(["f.1.txt", "f.2.txt", "g.txt", "h.1", "k"]) == "f.*.txt, g.txt, h.*, ... (5 edges)"
    assert group_edge_label(["r.json", "r.json"]) == "r.json (2 edges)"
    assert group_edge_label([f"{c}.txt" for c in "abcd"]) == "a.txt, b.txt, c.txt, ... (4 edges)"
    # labels with quotes are mermaid entity codes; keys stay the labels of nodes
    dag = build_dag([("a.1", []), ("end", [{"name": "f", "kind": "file", "path": 'output/a.1/say "hi".txt',
                                           "task": "a.1"}])])
    assert render(dag) == 'flowchart LR\na_1(["a.1"])\nend_(["end"])\na_1-->|"say #quot;hi#quot;.txt"|end_'


def test_dag_of_many_tasks_from_the_database_only(tmp_path):
    """100,000 tasks recorded in the DB (copied from a real instance's schema): the DAG is drawn
    without running a generator, grouped or not, in a few seconds."""
    inst = tmp_path / "instance"
    run(inst, "fails", check=False)
    db = sqlite3.connect(inst / ".drypipe" / "drypipe.db")
    conf_id = db.execute("SELECT conf_id FROM task LIMIT 1").fetchone()[0]
    n = 50_000
    specs = [("src", {"inputs": [], "outputs": {"p": {"kind": "fileset", "glob": "p.*"}}})]
    specs += [(f"w.{i}", {"inputs": [{"name": "f", "kind": "file", "path": f"output/src/p.{i}", "task": "src"}],
                          "outputs": {"v": {"kind": "var", "type": "int"}}}) for i in range(n)]
    specs += [(f"u-{i}", {"inputs": [{"name": "v", "kind": "var", "type": "int", "task": f"w.{i}",
                                      "output": "v"}], "outputs": {}}) for i in range(n - 1)]
    step = [{"kind": "bash", "snippet": "echo " + "x" * 200}]
    db.executemany("INSERT INTO task (key, state, step, executer_type, conf_id, spec, created_at) "
                   "VALUES (?, 'waiting', NULL, 'process', ?, ?, 0)",
                   [(k, conf_id, json.dumps({**s, "steps": step})) for k, s in specs])
    db.commit()
    db.close()
    res = dp("dag", "-pid", inst, "--group", check=True, timeout=60)
    assert res.stdout.splitlines()[-4:] == [
        'ok-->|"n: int"|bad', 'bad-->|"m: int"|after_bad',
        'src-->|"p.* (50000 edges)"|w', 'w-->|"v: int (49999 edges)"|u']
    lines = dp("dag", "-pid", inst, check=True, timeout=60).stdout.splitlines()
    assert len(lines) == 1 + 3 + 1 + n + n - 1 + 2 + n + n - 1
    assert lines[-1] == f'w_{n - 2}-->|"v: int"|u_{n - 2}'


# ---- drypipe trace ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def failed_then_passed(tmp_path_factory):
    """`bad` failed (exit 7) at attempt 1, then completed at attempt 2 (run --restart-failed)."""
    inst = tmp_path_factory.mktemp("fails") / "instance"
    run(inst, "fails", check=False)
    first = {fmt: dp("trace", "-pid", inst, "--format", fmt, check=True).stdout for fmt in ("tsv", "json")}
    (inst / "let-bad-pass").touch()
    run(inst, "fails", "--restart-failed")
    return inst, first


def parse_tsv(text):
    lines = text.splitlines()
    assert lines[0].split("\t") == list(COLUMNS)
    rows = [line.split("\t") for line in lines[1:]]
    assert all(len(r) == len(COLUMNS) for r in rows), text
    return [dict(zip(COLUMNS, r)) for r in rows]


def view_rows(inst):
    con = sqlite3.connect(f"file:{inst / '.drypipe' / 'drypipe.db'}?mode=ro", uri=True)
    cols = ", ".join(f'"{c}"' for c in COLUMNS)
    rows = [dict(zip(COLUMNS, r)) for r in con.execute(f"SELECT {cols} FROM attempts ORDER BY task_id, attempt")]
    con.close()
    return rows


def test_a_failed_attempt_has_its_exit_status_and_its_rerun_is_attempt_2(failed_then_passed):
    inst, first = failed_then_passed
    before = json.loads(first["json"])
    assert [(r["name"], r["attempt"], r["status"]) for r in before] == [
        ("ok", 1, "completed"), ("bad", 1, "failed")]
    assert before[1]["exit"] == 7
    rows = json.loads(dp("trace", "-pid", inst, "--format", "json", check=True).stdout)
    assert [(r["name"], r["attempt"], r["status"]) for r in rows] == [
        ("ok", 1, "completed"), ("bad", 1, "failed"), ("bad", 2, "completed"), ("after-bad", 1, "completed")]
    assert rows[1] == before[1]  # the failed attempt stays as it was
    assert rows[1]["exit"] == 7 and rows[2]["exit"] in (0, None)
    assert all(list(r) == list(COLUMNS) for r in rows)
    for r in rows:
        assert r["workdir"] == str(inst / "output" / r["name"])
        assert re.fullmatch(r"[0-9a-f]{12}", r["hash"])  # the digest of its fingerprint
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", r["submit"])
        assert r["duration"] >= r["realtime"] >= 0
    tsv = parse_tsv(dp("trace", "-pid", inst, check=True).stdout)
    assert tsv[1]["exit"] == "7" and tsv[1]["status"] == "failed"


def test_trace_json_tsv_and_the_attempts_view_agree(failed_then_passed):
    inst, first = failed_then_passed
    view = view_rows(inst)
    assert len(view) == 4
    as_json = json.loads(dp("trace", "-pid", inst, "--format", "json", check=True).stdout)
    assert as_json == view
    assert [{c: r[c] for c in COLUMNS} for r in Instance(str(inst)).attempts()] == view
    tsv_text = dp("trace", "-pid", inst, "--format", "tsv", check=True).stdout
    assert tsv_text == dp("trace", "-pid", inst, check=True).stdout  # tsv is the default
    as_tsv = parse_tsv(tsv_text)
    assert as_tsv == [{c: "-" if r[c] is None else str(r[c]) for c in COLUMNS} for r in view]
    # the trace taken after the first run agrees with it too
    assert parse_tsv(first["tsv"]) == [{c: "-" if r[c] is None else str(r[c]) for c in COLUMNS}
                                       for r in json.loads(first["json"])]


def test_trace_of_an_instance_with_no_attempt_yet(tmp_path):
    inst = tmp_path / "instance"
    dp("prepare", "-pid", inst, "--generator", f"{GEN}:fails", check=True)
    assert dp("trace", "-pid", inst, check=True).stdout == "\t".join(COLUMNS) + "\n"
    assert json.loads(dp("trace", "-pid", inst, "--format", "json", check=True).stdout) == []


# ---- report-execution-times: CPU and peak memory of the last attempt ----------------------------

def test_report_execution_times_shows_cpu_and_peak_memory(failed_then_passed):
    inst, _ = failed_then_passed
    out = dp("report-execution-times", "-pid", inst, check=True).stdout
    assert re.split(r" {2,}", out.splitlines()[0]) == ["task", "state", "duration", "steps (n:duration)", "cpu",
                                                      "peak mem"]
    last = {r["name"]: r for r in Instance(str(inst)).attempts()}  # in attempt order: the last wins
    rows = {cells[0]: cells for cells in (re.split(r" {2,}", line) for line in out.splitlines()[2:]) if cells[0]}
    for key in ("ok", "bad", "after-bad"):
        a = last[key]
        cpu = None if a["cpu_user"] is None else a["cpu_user"] + (a["cpu_sys"] or 0)
        expected = [fmt_seconds(cpu) if cpu is not None else "", fmt_bytes(a["peak_rss"])]
        assert rows[key][4:] == [c for c in expected if c], rows[key]
    assert fmt_bytes(212 * 1024 * 1024) == "212 MB" and fmt_bytes(1536 * 1024 ** 2) == "1.5 GB"
    assert fmt_bytes(512) == "512 B" and fmt_bytes(None) == ""


# ---- errors -------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", [["dag"], ["dag", "--group"], ["trace"], ["trace", "--format", "json"]])
def test_on_a_missing_instance_one_line_error(tmp_path, command):
    missing = tmp_path / "nope"
    res = dp(command[0], "-pid", missing, *command[1:])
    assert res.returncode == 2, res
    assert res.stdout == ""
    assert res.stderr == (f"drypipe: error: {missing}: not a pipeline instance (no .drypipe/drypipe.db); "
                          "run `drypipe prepare` or `drypipe run` first\n")
    assert not missing.exists()
