#!/usr/bin/env python3
"""Summary of a `make torture` run: one line per test of the JSON lines the tests appended to
the report file (DRYPIPE_TORTURE_REPORT). Usage: torture-summary.py [torture-report.jsonl]"""
import json
import sys
from pathlib import Path


def line(r):
    if r.get("test") == "crash_safety":
        ok = not r.get("failure")
        text = (f"crash-safety: {r['kills']} kills, {r['twice']} twice, {r['lost']} lost "
                f"({r['reattached']} tasks re-attached, {r['completed_at_last_kill']}/{r['tasks']} completed "
                f"at the last kill, CRASH_N={r['crash_n']}, {r['seconds']}s)")
        return text + ("" if ok else f"  FAILED: {r['failure'].splitlines()[0]}")
    if r.get("test") == "model":
        return (f"model:        {r['examples']} examples, {r['kills']} kills, {r['twice']} twice, {r['lost']} lost "
                f"({r['seconds']}s)" + ("  FAILED" if r.get("failed") else ""))
    return json.dumps(r)


def main():
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "torture-report.jsonl")
    if not path.exists():
        sys.exit(f"torture-summary: {path} is absent: no test reported")
    print(f"== torture summary ({path.name})")
    for text in path.read_text().splitlines():
        if text.strip():
            print(line(json.loads(text)))


if __name__ == "__main__":
    main()
