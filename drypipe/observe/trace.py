"""The trace of an instance: one row per task attempt, with Nextflow's trace column names.

The rows are those of the database view `attempts` (Instance.attempts()), in task then attempt
order, with the columns below: times ISO-8601 UTC, durations in ms, memory and I/O in bytes.
TSV: a header line, then tab-separated values, `-` for a value unknown (NULL), as Nextflow
prints it. JSON: a list of objects with the same keys, null for unknown, one object per line.
"""
from __future__ import annotations

import json

COLUMNS = ("task_id", "hash", "native_id", "name", "status", "exit", "submit", "start", "complete",
           "duration", "realtime", "%cpu", "peak_rss", "rchar", "wchar", "attempt", "workdir", "slurm_state")
FORMATS = ("tsv", "json")
NULL = "-"


def trace_rows(instance_dir: str) -> list[dict]:
    """Every attempt of the instance's tasks: dicts with the keys COLUMNS, in that order."""
    from ..api import Instance
    return [{c: r.get(c) for c in COLUMNS} for r in Instance(instance_dir).attempts()]


def _cell(v) -> str:
    if v is None:
        return NULL
    return str(v).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def format_tsv(rows: list[dict]) -> str:
    """The header and a line per row (each line ends with a newline)."""
    lines = ["\t".join(COLUMNS)]
    lines += ["\t".join(_cell(r[c]) for c in COLUMNS) for r in rows]
    return "\n".join(lines) + "\n"


def format_json(rows: list[dict]) -> str:
    """A JSON list, one object per line (ends with a newline)."""
    if not rows:
        return "[]\n"
    return "[\n" + ",\n".join(json.dumps(r) for r in rows) + "\n]\n"


def trace(instance_dir: str, fmt: str = "tsv") -> str:
    """The trace of an instance, as text in format fmt ('tsv' or 'json')."""
    from ..errors import DryPipeError
    if fmt not in FORMATS:
        raise DryPipeError(f"trace format {fmt!r} is not one of {', '.join(FORMATS)}")
    rows = trace_rows(instance_dir)
    return format_tsv(rows) if fmt == "tsv" else format_json(rows)
