"""The orchestrator's in-memory task graph: states, dependencies, readiness counting.

It is also the state oracle that DAG generators see through the DSL (state_of, keys_matching,
output values), so a generator run never touches the database."""
from __future__ import annotations

import fnmatch
import json
import re

from ..conf import TaskConf
from ..state import states as S


# An upstream reference in a task's spec JSON: the "task" member of one of its inputs (keys match
# [A-Za-z0-9._-]+, never escaped; no other member of a spec is named "task" with a string value)
# (in JSON, '"task":"' can only be a member and its string: within a string, quotes are escaped;
# a literal prefix, which the regex engine searches for at C speed: no lookbehind)
_COMPACT = re.compile(r'"task":"([^"\\]+)"')  # as jsontext.dumps writes it
_UPSTREAM_KEY = re.compile(r'(?<!\\)"task"\s*:\s*"([^"\\]+)"')  # any spacing (older DBs)


def upstream_keys(node: "Node") -> set[str]:
    """The keys of the tasks whose outputs node consumes, read from its spec JSON without
    parsing it when it was not parsed yet (loading 100k tasks parsed every spec for this alone)."""
    spec = node._spec
    if spec is None and node.spec_json is not None:
        js = node.spec_json
        keys = _COMPACT.findall(js)
        if keys:
            return set(keys)
        return set(_UPSTREAM_KEY.findall(js)) if '"task"' in js else set()
    return {k for i in node.spec["inputs"] if (k := i.get("task")) is not None}


class Node:
    __slots__ = ("id", "key", "state", "step", "executer_type", "conf", "conf_id", "spec_json", "_spec",
                 "job_id", "created_at", "launched_at", "started_at", "ended_at", "message",
                 "upstream", "downstream", "pending", "outputs", "log_offset", "start_step",
                 "attempt", "run", "usage", "fp_hash", "retry")

    def __init__(self, id_, key, state, step, executer_type, conf, conf_id, spec_json, spec=None,
                 job_id=None, created_at=None, launched_at=None, started_at=None, ended_at=None,
                 message=None, attempt=0, retry=0):
        """(the persisted fields after spec: a task loaded from the database)"""
        self.id = id_
        self.key = key
        self.state = state
        self.step = step
        self.executer_type = executer_type
        self.conf = conf
        self.conf_id = conf_id
        self.spec_json = spec_json
        self._spec = spec
        self.job_id = job_id
        self.created_at = created_at
        self.launched_at = launched_at
        self.started_at = started_at
        self.ended_at = ended_at
        self.message = message
        self.upstream = None
        self.downstream = []
        self.pending = 0
        self.outputs = None
        self.log_offset = 0
        self.start_step = 0
        self.attempt = attempt  # launches so far
        self.retry = retry  # automatic retries (TaskConf retries) since a person last (re)started it
        self.run = None  # the current attempt (scheduler/attempts.py), while it runs
        self.usage = None  # what its last attempt reported using (drypipe.log `usage` line)
        self.fp_hash = None  # the digest of its completed attempt's fingerprint (scheduler/changes.py)

    @property
    def spec(self) -> dict:
        if self._spec is None:  # parsed on first use: most loaded tasks are never looked at
            self._spec = json.loads(self.spec_json)
        return self._spec

    @spec.setter
    def spec(self, value: dict) -> None:
        """A new definition (a task changed in the generator): its JSON is recomputed when stored."""
        self._spec, self.spec_json = value, None

    @property
    def state_name(self) -> str:
        return S.format(self.state, self.step)

    def __repr__(self):
        return f"<Node {self.key} {self.state_name}>"


class TaskGraph:
    def __init__(self, instance_dir: str):
        self.instance_dir = instance_dir
        self.nodes: dict[str, Node] = {}
        self._confs: dict[int, TaskConf] = {}
        # loaded nodes not linked yet (an orchestrator made with defer_links: `prepare`, which
        # most often needs no links): linked, in load order, by the first method that needs them
        self.deferred: list[Node] = []

    # -- the DSL's oracle -----------------------------------------------------------------
    def is_known(self, key: str) -> bool:
        return key in self.nodes

    def state_of(self, key: str) -> str | None:
        n = self.nodes.get(key)
        return n.state if n is not None else None

    def output_values(self, key: str) -> dict[str, str]:
        n = self.nodes.get(key)
        return (n.outputs or {}) if n is not None else {}

    def spec_of(self, key: str) -> dict | None:
        n = self.nodes.get(key)
        return n.spec if n is not None else None

    def keys_matching(self, glob: str) -> list[str]:
        return fnmatch.filter(self.nodes.keys(), glob) if any(c in glob for c in "*?[") else (
            [glob] if glob in self.nodes else [])

    # -- building -------------------------------------------------------------------------
    def add(self, node: Node) -> None:
        self.nodes[node.key] = node

    def link_deferred(self) -> None:
        """Link the nodes whose links were deferred (none: nothing to do)."""
        deferred, self.deferred = self.deferred, []
        for n in deferred:
            self.link(n)

    def has_pending_upstream(self, node: Node) -> bool:
        """Does node consume an output of a task not completed? (without linking it)"""
        nodes = self.nodes
        return any(nodes[k].state != S.COMPLETED for k in upstream_keys(node))

    def link(self, node: Node, ups: set[str] | None = None) -> None:
        """Compute node's upstream set (ups, when the caller has it) and pending count; register
        it downstream of each."""
        if self.deferred:  # (first: downstream lists stay in load order)
            self.link_deferred()
        if ups is None:
            ups = upstream_keys(node)
        node.upstream = ups
        pending = 0
        nodes = self.nodes
        for k in ups:
            up = nodes[k]
            up.downstream.append(node)
            if up.state != S.COMPLETED:
                pending += 1
        node.pending = pending

    def missing_upstream(self, node_key: str, spec: dict) -> str | None:
        for i in spec["inputs"]:
            k = i.get("task")
            if k and k not in self.nodes:
                return k
        return None

    def completed(self, node: Node) -> list[Node]:
        """Mark node completed; return the downstream nodes that became ready."""
        if self.deferred:
            self.link_deferred()
        ready = []
        for d in node.downstream:
            d.pending -= 1
            if d.pending == 0 and d.state == S.WAITING:
                ready.append(d)
        return ready

    def uncompleted(self, node: Node) -> list[Node]:
        """node leaves the completed state (reset/restart): its downstream wait again; returns them."""
        if self.deferred:
            self.link_deferred()
        for d in node.downstream:
            d.pending += 1
        return node.downstream

    def counts(self) -> dict[str, int]:
        c: dict[str, int] = {}
        for n in self.nodes.values():
            c[n.state] = c.get(n.state, 0) + 1
        return c
