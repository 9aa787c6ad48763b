"""The DAG of an instance, as its database records it, drawn as a mermaid flowchart.

    flowchart LR
    t1(["t1"])
    t2(["t2"])
    t3(["t3"])
    t1-->|"x: int"|t2
    t2-->|"f.tsv"|t3
    t1-->|"z.json"|t3

A node per task, in creation order, then an edge per output that a task produces and another
consumes, labelled with the variable and its type (`x: int`), the file name (`f.tsv`) or a
fileset's glob. An input glob over other tasks' output dirs
(`matcher.all.results_file.as_glob_expression()`, i.e. `output/task-for-chunk.*/results.json`)
draws an edge from each task it matches that was created before the consumer.

Edges come consumer by consumer, in creation order. A consumer's inputs come nearest upstream
first (the input whose upstream task was created last first; inputs from the same task in their
order), and the edges of one input (a glob over several tasks) in their tasks' creation order.
That is the order of the guide's diagram, and always the same for the same database.

Node ids are the keys with every run of characters other than letters, digits and `_` made one
`_` (`task-for-chunk.1` -> `task_for_chunk_1`), a suffix `_2`, `_3`, ... for the rare id already
taken, and `_` appended to mermaid's keywords (`end`); node labels are the keys.

Grouped (group=True, for DAGs of thousands of tasks): a node per key pattern (key_pattern: the
numbers between separators become `*`), labelled `task-for-chunk.* (4 tasks)`, or the key of a
group of one; an edge per pair of groups linked by task edges, labelled with the task edges'
distinct labels (their numbers made `*` too, 3 at most) and their count: `results.json (4
edges)`; one or a few distinct labels with no repeats are listed as they are.

Nothing runs the generator: this is the DAG recorded so far (a dynamic DAG grows as it runs).
"""
from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass, field

_NUMBER_COMPONENT = re.compile(r"(?<=[._-])\d+(?=[._-]|\Z)")
_NOT_ID = re.compile(r"[^A-Za-z0-9_]+")
_GLOB_CHARS = re.compile(r"[*?\[]")
# words of mermaid's flowchart grammar: a node id spelled like one breaks the chart
_KEYWORDS = frozenset({"end", "graph", "flowchart", "subgraph", "style", "classdef", "class", "click",
                       "linkstyle", "direction", "default", "call", "href", "interpolate", "callback"})
MAX_GROUP_LABELS = 3


def key_pattern(key: str) -> str:
    """The group of a task in a grouped DAG: each number that is a whole component of its key,
    after a '.', '-' or '_' and up to the next one or the end, becomes '*':
    'task-for-chunk.12' -> 'task-for-chunk.*', 'sample.3.align-2' -> 'sample.*.align-*'.
    't1' and 's1.align' are groups of their own. The pattern is a glob matching the group's keys
    (`drypipe list-states --task-key PATTERN`)."""
    return _NUMBER_COMPONENT.sub("*", key)


@dataclass
class Dag:
    """Task keys in creation order; edges (producer, label, consumer), indexes into keys."""
    keys: list[str] = field(default_factory=list)
    edges: list[tuple[int, str, int]] = field(default_factory=list)


def read_dag(instance_dir: str) -> Dag:
    """The DAG of the tasks recorded in an instance's database (read-only)."""
    from ..api import Instance
    return build_dag(task_inputs(Instance(instance_dir).engine))


def task_inputs(engine) -> list[tuple[str, list[dict]]]:
    """(key, inputs of its spec) of every task, in creation order. SQLite extracts the inputs
    from the specs (whose step code can be long): twice as fast for 100,000 tasks."""
    import json
    from sqlalchemy import func, select
    from sqlalchemy.exc import OperationalError
    from ..state.models import task_table
    t = task_table.c
    with engine.connect() as c:
        try:
            rows = c.execute(select(t.key, func.json_extract(t.spec, "$.inputs")).order_by(t.id)).all()
        except OperationalError:  # an SQLite built without JSON functions
            return [(k, json.loads(spec)["inputs"])
                    for k, spec in c.execute(select(t.key, t.spec).order_by(t.id))]
    return [(key, json.loads(inputs) if inputs else []) for key, inputs in rows]


def build_dag(tasks) -> Dag:
    """The Dag of (key, inputs) pairs in creation order (inputs: the "inputs" of a task's spec)."""
    dag = Dag()
    all_inputs = []
    for key, inputs in tasks:
        dag.keys.append(key)
        all_inputs.append(inputs)
    index = {k: i for i, k in enumerate(dag.keys)}
    matcher = _KeyGlobs(dag.keys, index)
    for ci, inputs in enumerate(all_inputs):
        found = []
        for pos, inp in enumerate(inputs):
            sources = _sources(inp, ci, index, matcher)
            if sources:
                nearest = max(pi for pi, _ in sources)
                found += [(-nearest, pos, pi, label) for pi, label in sources]
        found.sort()
        seen = set()
        for _, _, pi, label in found:
            if (pi, label) not in seen:
                seen.add((pi, label))
                dag.edges.append((pi, label, ci))
    return dag


class _KeyGlobs:
    """Indexes of the keys a glob matches, each glob compiled and matched once."""

    def __init__(self, keys, index):
        self.keys = keys
        self.index = index
        self.cache: dict[str, list[int]] = {}

    def match(self, glob: str) -> list[int]:
        found = self.cache.get(glob)
        if found is None:
            if not _GLOB_CHARS.search(glob):
                found = [self.index[glob]] if glob in self.index else []
            else:
                rx = re.compile(fnmatch.translate(glob))
                found = [i for i, k in enumerate(self.keys) if rx.match(k)]
            self.cache[glob] = found
        return found


def _sources(inp: dict, ci: int, index: dict, matcher: _KeyGlobs):
    """(producer index, label) of each upstream output an input consumes."""
    kind = inp.get("kind")
    up = inp.get("task")
    if up is not None:
        pi = index.get(up)
        if pi is None or pi == ci:
            return ()
        if kind == "var":
            label = f"{inp.get('output') or inp.get('name')}: {inp.get('type')}"
        elif kind == "file":
            label = _in_output_dir(inp.get("path", ""), up)
        elif kind == "glob":
            label = _in_output_dir(inp.get("pattern", ""), up)
        else:
            label = inp.get("name", "")
        return ((pi, label),)
    if kind == "glob":  # a glob over other tasks' output dirs: output/<key glob>/<file glob>
        parts = inp.get("pattern", "").split("/", 2)
        if len(parts) == 3 and parts[0] == "output":
            return [(pi, parts[2]) for pi in matcher.match(parts[1]) if pi < ci]
    return ()


def _in_output_dir(path: str, up: str) -> str:
    """A path in task up's output dir, relative to it; the file name of any other path."""
    prefix = f"output/{up}/"
    return path[len(prefix):] if path.startswith(prefix) else os.path.basename(path) or path


def node_ids(names) -> list[str]:
    """Valid, distinct mermaid node ids for names, in order (see the module's doc)."""
    used: set[str] = set()
    out = []
    for name in names:
        base = _NOT_ID.sub("_", name)
        if base != name:
            base = base.strip("_") or "n"
        if base.lower() in _KEYWORDS:
            base += "_"
        nid, n = base, 2
        while nid in used:
            nid, n = f"{base}_{n}", n + 1
        used.add(nid)
        out.append(nid)
    return out


def _text(label: str) -> str:
    """A label inside mermaid's double quotes: `#` and `"` as mermaid's entity codes."""
    return label.replace("#", "#35;").replace('"', "#quot;")


def render(dag: Dag) -> str:
    """The flowchart of a Dag: a node per task, an edge per consumed output."""
    ids = node_ids(dag.keys)
    lines = ["flowchart LR"]
    lines += [f'{nid}(["{_text(k)}"])' for nid, k in zip(ids, dag.keys)]
    lines += [f'{ids[p]}-->|"{_text(label)}"|{ids[c]}' for p, label, c in dag.edges]
    return "\n".join(lines)


def render_grouped(dag: Dag) -> str:
    """The flowchart of a Dag with a node per key pattern (see the module's doc)."""
    patterns = [key_pattern(k) for k in dag.keys]
    members: dict[str, list[int]] = {}
    for i, p in enumerate(patterns):
        members.setdefault(p, []).append(i)
    group_of = {p: g for g, p in enumerate(members)}
    names = [dag.keys[m[0]] if len(m) == 1 else p for p, m in members.items()]
    labels = [dag.keys[m[0]] if len(m) == 1 else f"{p} ({len(m)} tasks)" for p, m in members.items()]
    ids = node_ids(names)
    edges: dict[tuple[int, int], list[str]] = {}
    for p, label, c in dag.edges:
        edges.setdefault((group_of[patterns[p]], group_of[patterns[c]]), []).append(label)
    lines = ["flowchart LR"]
    lines += [f'{nid}(["{_text(label)}"])' for nid, label in zip(ids, labels)]
    lines += [f'{ids[gp]}-->|"{_text(group_edge_label(ls))}"|{ids[gc]}' for (gp, gc), ls in edges.items()]
    return "\n".join(lines)


def group_edge_label(labels: list[str]) -> str:
    """The label of an edge between groups, from its task edges' labels."""
    distinct = list(dict.fromkeys(labels))
    if len(distinct) == len(labels) <= MAX_GROUP_LABELS:
        return ", ".join(distinct)
    shown = list(dict.fromkeys(key_pattern(label) for label in distinct))
    text = ", ".join(shown[:MAX_GROUP_LABELS]) + (", ..." if len(shown) > MAX_GROUP_LABELS else "")
    return f"{text} ({len(labels)} edges)"


def mermaid(instance_dir: str, group: bool = False) -> str:
    """The instance's DAG as a mermaid flowchart (no trailing newline); grouped by key pattern
    when group. Reads the database only: a few seconds for 100,000 tasks."""
    dag = read_dag(instance_dir)
    return render_grouped(dag) if group else render(dag)
