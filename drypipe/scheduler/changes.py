"""Out-of-date tasks: a completed task whose fingerprint (scheduler/fingerprint.py) differs from
what the generator yields now. Found while generating (check), listed in `drypipe run`'s
summary, explained by `drypipe why` and Instance.why(), rerun by `drypipe run --rerun-changed`
(rerun_changed): each out-of-date task and everything downstream of it, through the state
machine's `reset` event; nothing ever reruns by itself."""
from __future__ import annotations

import fnmatch
import json

from ..jsontext import dumps_sorted
from ..state import states as S
from . import fingerprint as fpr
from .restarts import make_ready


class Changes:
    """What the checks of one orchestrator found."""

    def __init__(self):
        self.out_of_date: dict = {}  # key -> fingerprint.Why, in the order found (upstream first)
        self.cosmetic: dict = {}  # key -> Why of a task whose code changed in comments or spaces only
        self.digests: dict[str, str] = {}  # key -> current digest, of the completed tasks checked
        self.rerun: dict[str, str | None] = {}  # key -> why, of the tasks --rerun-changed reset (None: downstream)
        self.thorough = False  # compare even what has the same digest (`why`: cosmetic changes)


def launch_fingerprint(orch, n) -> tuple[str, str]:
    """(digest, JSON) of what task n is launched with; its upstream as they completed."""
    nodes = orch.graph.nodes
    ups = {i["task"] for i in n.spec["inputs"] if i.get("task")}
    fp = fpr.fingerprint(n.spec, n.conf, orch.materializer.code_dir, orch.instance_dir,
                         lambda k: nodes[k].outputs, {k: nodes[k].fp_hash for k in ups})
    return fpr.digest(fp), dumps_sorted(fp)


def check(orch, pairs) -> None:
    """pairs: (node, task) of the completed tasks the generator just yielded, upstream first."""
    ch, nodes = orch.changes, orch.graph.nodes
    for n, task in pairs:
        if n.key in ch.digests or not n.fp_hash:  # checked already; or run by an older DryPipe
            continue
        spec = task.spec()
        ups = {i["task"] for i in spec["inputs"] if i.get("task")}
        current = fpr.fingerprint(spec, task.conf, orch.materializer.code_dir, orch.instance_dir,
                                  lambda k: nodes[k].outputs,
                                  {k: ch.digests.get(k, nodes[k].fp_hash) for k in ups})
        digest = ch.digests[n.key] = fpr.digest(current)
        if digest == n.fp_hash and not ch.thorough:
            continue
        text = orch.store.load_fingerprint(n.id, n.attempt)
        if text is None:
            continue
        why = fpr.compare(n.key, json.loads(text), current, {u for u in ups if u in ch.out_of_date})
        if why.out_of_date:
            ch.out_of_date[n.key] = why
        elif why.cosmetic:
            ch.cosmetic[n.key] = why


def downstream_of(orch, keys) -> list:
    """The nodes of keys and every task downstream of them (whatever their state), by id."""
    below: dict[str, list[str]] = {}
    for n in orch.graph.nodes.values():
        for i in n.spec["inputs"]:
            up = i.get("task")
            if up is not None:
                below.setdefault(up, []).append(n.key)
    seen, todo = set(keys), list(keys)
    while todo:
        for d in below.get(todo.pop(), ()):
            if d not in seen:
                seen.add(d)
                todo.append(d)
    return sorted((orch.graph.nodes[k] for k in seen), key=lambda n: n.id)


def rerun_changed(orch, pattern: str | None = None) -> list:
    """Reset the out-of-date tasks (those matching the glob pattern) and every completed task
    downstream of them; the generator runs again, so that a dynamic downstream is re-generated
    from the new outputs. Returns the nodes reset."""
    orch.generate()
    chosen = [k for k in orch.changes.out_of_date if pattern is None or fnmatch.fnmatchcase(k, pattern)]
    if not chosen:
        return []
    nodes = [n for n in downstream_of(orch, chosen) if n.state == S.COMPLETED]
    for n in nodes:  # linked while still completed: a reset upstream counts as pending below
        if n.upstream is None:
            orch.graph.link(n)
    make_ready(orch, [(n, 0) for n in nodes], reset=True)
    for n in nodes:
        why = orch.changes.out_of_date.pop(n.key, None)
        orch.changes.rerun[n.key] = why.reason if why else None
        orch.changes.digests.pop(n.key, None)
    orch.regenerate = True
    return nodes
