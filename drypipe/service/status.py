"""`drypipe status --pipeline-instance-dir HOME` on a service home: one line per instance.

Reads service.json (written by the service at start-up: its types and instances dirs), each
instance's marker and its task counts (one read-only SQLite query each; no SQLAlchemy), so it
works while the service runs, and after it stopped."""
from __future__ import annotations

import json
import os
import sqlite3

from ..state import db
from ..state.lock import holder_pid
from . import markers as M
from .markers import SERVICE_JSON, SERVICE_LOCK, service_file


def task_counts(instance_dir: str) -> dict[str, int]:
    """state -> number of tasks, read from the instance's DB ({} when it has none yet)."""
    path = db.db_path(instance_dir)
    if not os.path.exists(path):
        return {}
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            return dict(con.execute("SELECT state, count(*) FROM task GROUP BY state").fetchall())
        finally:
            con.close()
    except sqlite3.Error:
        return {}


def instances(home: str) -> list[dict]:
    """Every instance folder of every type of the service home, with marker and counts."""
    with open(service_file(home, SERVICE_JSON)) as f:
        info = json.load(f)
    out = []
    for t in info["types"]:
        for d in M.instance_folders(t["instances_dir"]):
            out.append({"type": t["name"], "folder": d, "state": M.current(d) or "-",
                        "counts": task_counts(d)})
    return out


def status_text(home: str) -> str:
    from ..reports import state_counts_line
    home = os.path.abspath(home)
    pid = holder_pid(home, SERVICE_LOCK)
    rows = instances(home)
    by_state: dict[str, int] = {}
    for r in rows:
        by_state[r["state"]] = by_state.get(r["state"], 0) + 1
    lines = [f"{home}: " + (f"service running (pid {pid})" if pid else "no service running") + ", "
             f"{len(rows)} instances" + (f" ({', '.join(f'{v} {k}' for k, v in sorted(by_state.items()))})"
                                         if rows else "")]
    if rows:
        wt = max(4, *(len(r["type"]) for r in rows))
        wf = max(6, *(len(os.path.relpath(r["folder"], home)) for r in rows))
        lines.append(f"{'TYPE':<{wt}}  {'FOLDER':<{wf}}  {'STATE':<9}  TASKS")
        for r in rows:
            counts = r["counts"]
            total = sum(counts.values())
            tasks = f"{total}: {state_counts_line(counts)}" if total else "0"
            lines.append(f"{r['type']:<{wt}}  {os.path.relpath(r['folder'], home):<{wf}}  {r['state']:<9}  {tasks}")
    return "\n".join(lines)
