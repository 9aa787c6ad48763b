"""`drypipe why`, Instance.out_of_date() and Instance.why(): the generator run on a read-only
view of the instance (a dry-run orchestrator), and what scheduler/changes.py finds of every
completed task it yields, put in words."""
from __future__ import annotations

from ..state import states as S
from . import fingerprint as fpr
from .changes import Changes


class Report:
    """What a dry run of the generator says about an instance's completed tasks."""

    def __init__(self, changes: Changes, states: dict[str, str]):
        self.changes = changes
        self.states = states  # key -> state name

    def out_of_date(self) -> dict[str, str]:
        """key -> first reason, of every out-of-date task (upstream first)."""
        return {k: w.reason for k, w in self.changes.out_of_date.items()}

    def why(self, key: str):
        """The fingerprint.Why of a completed task (None for one that is not completed)."""
        if self.states.get(key) != S.COMPLETED:
            return None
        return self.changes.out_of_date.get(key) or self.changes.cosmetic.get(key) or fpr.Why(key, [], [], [])

    def explain(self, key: str) -> list[str]:
        """`drypipe why`: the reasons, their diffs and files, the upstream chain that caused it."""
        state = self.states.get(key)
        if state is None:
            from ..errors import DryPipeError
            raise DryPipeError(f"no task {key!r} in this instance (`drypipe list-states` lists them)")
        why = self.why(key)
        if why is None:
            return [f"task {key}: {state}: only a completed task can be out of date"]
        if not why.out_of_date:
            lines = [f"task {key}: up to date"]
            if why.cosmetic:
                lines.append("its code changed in white space or comments only (cosmetic: not out of date):")
                lines.extend(why.cosmetic)
            return lines
        lines = [f"task {key}: out of date"]
        lines.extend(f"  {r}" for r in why.reasons)
        lines.extend(why.details)
        if why.cosmetic:
            lines.append("cosmetic code changes (white space, comments: not a reason):")
            lines.extend(why.cosmetic)
        chain, seen = [key], {key}
        while True:  # the upstream that caused it, and so on up to a task changed itself
            ups = [r[len("upstream "):-len(" is out of date")] for r in self.changes.out_of_date[chain[-1]].reasons
                   if r.startswith("upstream ") and r.endswith(" is out of date")]
            if not ups or ups[0] in seen or ups[0] not in self.changes.out_of_date:
                break
            chain.append(ups[0])
            seen.add(ups[0])
        if len(chain) > 1:
            lines.append("caused upstream: " + " <- ".join(chain))
            root = self.changes.out_of_date[chain[-1]]
            lines.append(f"task {chain[-1]}:")
            lines.extend(f"  {r}" for r in root.reasons)
            lines.extend(root.details)
        return lines


def report(instance_dir: str, generator: str | None = None) -> Report:
    """Run the generator (the one given, else the one the instance was run with) on a read-only
    view of the instance, and compare every completed task it yields with what it ran with."""
    from ..dsl.pipeline import load_pipeline
    from ..errors import DryPipeError
    from .orchestrator import Orchestrator
    import os
    from ..state.db import DB_NAME, db_path
    if not os.path.exists(db_path(instance_dir)):
        raise DryPipeError(f"{instance_dir}: not a pipeline instance (no .drypipe/{DB_NAME})")
    generator = generator or recorded_generator(instance_dir)
    if not generator:
        raise DryPipeError(f"{instance_dir}: no generator recorded for this instance: give --generator")
    with Orchestrator(instance_dir, load_pipeline(generator), dry_run=True) as orch:
        orch.changes.thorough = True
        orch.generate()
        return Report(orch.changes, {k: n.state for k, n in orch.graph.nodes.items()})


def recorded_generator(instance_dir: str) -> str | None:
    """The --generator the instance was last run (or prepared) with."""
    import sqlite3
    from ..state.db import db_path
    try:
        con = sqlite3.connect(f"file:{db_path(instance_dir)}?mode=ro", uri=True)
    except sqlite3.Error:
        return None
    try:
        row = con.execute("SELECT value FROM instance_meta WHERE name = 'generator'").fetchone()
    except sqlite3.Error:
        row = None
    finally:
        con.close()
    return row[0] if row else None
