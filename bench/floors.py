"""Floors: the least any tool could spend on a workload, measured on this machine in the same run.

The bash floors run exactly the commands DryPipe's tasks run (bench/pipelines.py renders both),
spawned directly, with nothing else around them. The prepare floor is what preparing a static
pipeline costs at least in pure Python: one record per task, a hash of each, a topological sort.

    python -m bench.floors prepare N     (run from the repo root; prints JSON)"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from . import pipelines


def _bash(cmd: str) -> None:
    subprocess.run(["bash", "-c", cmd], check=True)


def run_independent(n: int, work_dir: str) -> None:
    """n `echo i > out` from a pool of as many threads as CPUs."""
    cmds = [pipelines.independent_command(i, os.path.join(work_dir, f"out_{i}.txt")) for i in range(n)]
    with ThreadPoolExecutor(os.cpu_count()) as pool:
        for _ in pool.map(_bash, cmds):
            pass


def run_chain(n: int, work_dir: str) -> None:
    """The n commands of the chain, one after the other (each depends on the one before)."""
    prev = None
    for i in range(n):
        out = os.path.join(work_dir, f"out_{i}.txt")
        _bash(pipelines.chain_command(i, prev, out))
        prev = out


def prepare_static(n: int) -> list[str]:
    """Build n task records shaped like static_100k's, hash each, sort them topologically."""
    snippet = pipelines.independent_command("$i", "$out")
    records: dict[str, dict] = {}
    for i in range(n):
        key = f"s-{i}"
        up = pipelines.static_upstream(i)
        deps = () if up is None else (f"s-{up}",)
        rec = {"key": key, "inputs": {"i": i, "prev": deps}, "outputs": {"out": "out.txt"},
               "steps": (snippet,), "deps": deps}
        rec["hash"] = hashlib.sha1(repr(rec).encode()).hexdigest()
        records[key] = rec
    return topological_order(records)


def topological_order(records: dict[str, dict]) -> list[str]:
    """Kahn's algorithm over rec["deps"]."""
    indegree = {k: len(r["deps"]) for k, r in records.items()}
    downstream: dict[str, list[str]] = {}
    for k, r in records.items():
        for d in r["deps"]:
            downstream.setdefault(d, []).append(k)
    order = [k for k, deg in indegree.items() if deg == 0]
    for k in order:  # order grows while we walk it
        for child in downstream.get(k, ()):
            indegree[child] -= 1
            if indegree[child] == 0:
                order.append(child)
    if len(order) != len(records):
        raise ValueError("cycle")
    return order


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "prepare":
        print("usage: python -m bench.floors prepare N", file=sys.stderr)
        return 2
    n = int(argv[1])
    t0 = time.perf_counter()
    order = prepare_static(n)
    elapsed = time.perf_counter() - t0
    assert len(order) == n
    print(json.dumps({"tasks": len(order), "work_seconds": elapsed}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
