"""Task fingerprints: what an attempt ran with, recorded at its launch (the `fingerprint` column
of the attempt table), and compared with what the generator yields now to say whether a
completed task is out of date, and why.

A fingerprint is JSON: {"code": [one per step], "values": {input: value}, "files": {input:
[[path, size, mtime_ns], ...]}, "conf": {TaskConf field: value}, "upstream": {key: digest}}.
Its digest (the attempt's `hash`) is taken over the *normalized* code: a bash step without its
comments and with its white space collapsed, a python function's syntax tree without its
docstrings. So an edit of a comment or of the indentation changes the recorded text (which
`why` shows as a cosmetic diff) but not the digest: the task is not out of date.

The reasons are compared in this order, and the first that differs is the summary's one:
code, input values, input files, conf, upstream."""
from __future__ import annotations

import ast
import difflib
import functools
import inspect
import json
import os
import sys

from ..digest import sha1
from ..jsontext import dumps_sorted

# TaskConf fields that say how to retry, not what runs: a change is not a change of the task
NOT_FINGERPRINTED = frozenset({"retries", "retry_scale"})


# -- code ----------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=4096)
def normalize_bash(text: str) -> str:
    """Bash text without comments and with white space collapsed: each line stripped, runs of
    blanks made one space, empty lines dropped. A `#` starts a comment at the start of a word
    outside quotes (as bash reads it); inside quotes, or in the middle of a word (`a#b`,
    `${#x}`, `$#`), it is text. Here-documents are not told apart: a comment-like line in one
    is dropped, which can only make two versions look the same when they differ in it."""
    out = []
    for line in text.splitlines():
        kept, quote, prev, i = [], None, " ", 0
        while i < len(line):
            c = line[i]
            if quote:
                kept.append(c)
                if c == "\\" and quote == '"' and i + 1 < len(line):
                    kept.append(line[i + 1])
                    i += 1
                elif c == quote:
                    quote = None
            elif c == "\\" and i + 1 < len(line):
                kept.append(c + line[i + 1])
                i += 1
            elif c in "'\"":
                quote = c
                kept.append(c)
            elif c == "#" and prev in " \t;&|()":
                break
            else:
                kept.append(c)
            prev = c
            i += 1
        words = "".join(kept).split()
        if words:
            out.append(" ".join(words))
    return "\n".join(out)


@functools.lru_cache(maxsize=1024)
def normalize_python(source: str) -> str:
    """The syntax tree of a function's source without docstrings (comments and layout are not
    in it); the source with white space collapsed where it does not parse."""
    try:
        tree = ast.parse(_dedent(source))
    except SyntaxError:
        return " ".join(source.split())
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(getattr(body[0], "value", None), ast.Constant) \
                and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, annotate_fields=False)


def _dedent(source: str) -> str:
    import textwrap
    return textwrap.dedent(source)


_SOURCES: dict = {}


def python_source(module: str, qualname: str) -> str | None:
    """The source of module.qualname, from the module this process imported (None when it
    cannot be had: not imported, or no source)."""
    key = (module, qualname)
    if key in _SOURCES:
        return _SOURCES[key]
    source = None
    obj = sys.modules.get(module)
    try:
        for part in qualname.split("."):
            obj = getattr(obj, part)
        obj = inspect.unwrap(obj)
        source = inspect.getsource(obj)
    except (AttributeError, TypeError, OSError):
        source = None
    _SOURCES[key] = source
    return source


def script_text(code_dir: str, path: str) -> str | None:
    try:
        with open(os.path.join(code_dir, path), encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def code_of(steps: list, code_dir: str) -> list[dict]:
    """What each step runs: bash text, a script's text, a python function's source."""
    out = []
    for s in steps:
        kind = s["kind"]
        if kind == "bash":
            out.append({"kind": "bash", "text": s["snippet"]})
        elif kind == "script":
            out.append({"kind": "script", "path": s["path"], "text": script_text(code_dir, s["path"])})
        else:
            out.append({"kind": "python", "function": f"{s['module']}:{s['function']}",
                        "text": python_source(s["module"], s["function"])})
    return out


def _normalized_code(code: list[dict]) -> list:
    return [[c["kind"], c.get("path") or c.get("function"),
             None if c["text"] is None else
             normalize_python(c["text"]) if c["kind"] == "python" else normalize_bash(c["text"])]
            for c in code]


# -- the whole fingerprint ------------------------------------------------------------------------

def _stat(path: str):
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def files_of(spec: dict, instance_dir: str) -> dict:
    """input name -> [[path, size, mtime_ns]] (size None: missing) of the task's input files."""
    import glob as _glob
    out = {}
    for i in spec["inputs"]:
        kind = i["kind"]
        if kind == "file":
            path = i["path"]
            full = path if os.path.isabs(path) else os.path.join(instance_dir, path)
            out[i["name"]] = [[path, *(_stat(full) or [None, None])]]
        elif kind == "glob":
            pattern = i["pattern"]
            base = "" if os.path.isabs(pattern) else _glob.escape(instance_dir) + os.sep
            rows = []
            for full in sorted(_glob.glob(base + pattern)):
                rows.append([os.path.relpath(full, instance_dir) if base else full, *(_stat(full) or [None, None])])
            out[i["name"]] = rows
    return out


def values_of(spec: dict, upstream_outputs) -> dict:
    """input name -> value: literal inputs, and the values of upstream variables it receives."""
    out = {}
    for i in spec["inputs"]:
        if i["kind"] == "value":
            out[i["name"]] = i["value"]
        elif i["kind"] == "var":
            outputs = upstream_outputs(i["task"]) or {}
            out[i["name"]] = outputs.get(i["output"])
    return out


def conf_of(conf) -> dict:
    """The fingerprinted part of a TaskConf (one dict per distinct conf: never mutated)."""
    key = conf.to_json_key()
    d = _CONFS.get(key)
    if d is None:
        d = _CONFS[key] = {k: v for k, v in json.loads(key).items() if k not in NOT_FINGERPRINTED}
    return d


_CONFS: dict[str, dict] = {}


def fingerprint(spec: dict, conf, code_dir: str, instance_dir: str, upstream_outputs,
                upstream_digests: dict) -> dict:
    return {"code": code_of(spec["steps"], code_dir), "values": values_of(spec, upstream_outputs),
            "files": files_of(spec, instance_dir), "conf": conf_of(conf),
            "upstream": dict(sorted(upstream_digests.items()))}


DIGEST_LEN = 12


def digest(fp: dict) -> str:
    """12 hex digits over the normalized fingerprint (the attempt's `hash`)."""
    norm = {**fp, "code": _normalized_code(fp["code"])}
    return sha1(dumps_sorted(norm).encode()).hexdigest()[:DIGEST_LEN]


# -- why ----------------------------------------------------------------------------------------

class Why:
    """How a completed task's recorded fingerprint compares with the current one."""

    def __init__(self, key: str, reasons: list[str], details: list[str], cosmetic: list[str]):
        self.key = key
        self.reasons = reasons  # one line each, the first is the summary's
        self.details = details  # diffs and lists, for `drypipe why`
        self.cosmetic = cosmetic  # diffs of code changes that change nothing

    @property
    def out_of_date(self) -> bool:
        return bool(self.reasons)

    @property
    def reason(self) -> str | None:
        return self.reasons[0] if self.reasons else None


def compare(key: str, recorded: dict, current: dict, out_of_date_upstream=frozenset()) -> Why:
    reasons, details, cosmetic = [], [], []
    # code
    old_code, new_code = recorded.get("code") or [], current["code"]
    comparable = [(o, n) for o, n in zip(old_code, new_code) if o.get("text") is not None and n.get("text") is not None]
    if len(old_code) != len(new_code) or any(o["kind"] != n["kind"] for o, n in zip(old_code, new_code)):
        reasons.append("code changed")
        details.append(f"steps: {len(old_code)} -> {len(new_code)}")
    elif comparable and _normalized_code([o for o, _ in comparable]) != _normalized_code([n for _, n in comparable]):
        reasons.append("code changed")
        details.extend(_code_diffs(comparable, key))
    elif any(o["text"] != n["text"] for o, n in comparable):
        cosmetic.extend(_code_diffs(comparable, key))
    # input values
    old_v, new_v = recorded.get("values") or {}, current["values"]
    for name in _names(old_v, new_v):
        if name not in new_v:
            reasons.append(f"input {name}: removed")
        elif name not in old_v:
            reasons.append(f"input {name}: added ({new_v[name]})")
        elif old_v[name] != new_v[name]:
            reasons.append(f"input {name}: {old_v[name]} -> {new_v[name]}")
    # input files
    old_f, new_f = recorded.get("files") or {}, current["files"]
    for name in _names(old_f, new_f):
        old, new = old_f.get(name), new_f.get(name)
        if old == new:
            continue
        if old is None or new is None:
            reasons.append(f"input file {name}: {'added' if old is None else 'removed'}")
        elif [r[0] for r in old] != [r[0] for r in new]:
            reasons.append(f"input file {name}: the files changed")
        elif any(r[1] is None for r in new):
            reasons.append(f"input file {name}: missing")
        else:
            reasons.append(f"input file {name}: size/mtime changed")
    if new_f:  # the file list, as it is now
        details.append("input files:")
        for name in sorted(new_f):
            changed = "" if old_f.get(name) == new_f[name] else "  (changed)"
            details.extend(f"  {name}: {r[0]} size={r[1]} mtime_ns={r[2]}{changed}" for r in new_f[name])
    # conf
    old_c, new_c = recorded.get("conf") or {}, current["conf"]
    changed = [k for k in _names(old_c, new_c) if old_c.get(k) != new_c.get(k)]
    if changed:
        reasons.append(f"conf changed: {', '.join(changed)}")
        details.extend(f"  conf {k}: {old_c.get(k)!r} -> {new_c.get(k)!r}" for k in changed)
    # upstream
    old_u, new_u = recorded.get("upstream") or {}, current["upstream"]
    for up in _names(old_u, new_u):
        if old_u.get(up) != new_u.get(up) or up in out_of_date_upstream:
            reasons.append(f"upstream {up} is out of date")
    return Why(key, reasons, details, cosmetic)


def _names(a: dict, b: dict) -> list:
    return sorted(set(a) | set(b))


def _code_diffs(pairs, key) -> list[str]:
    out = []
    for i, (o, n) in enumerate(pairs):
        if o["text"] == n["text"]:
            continue
        what = o.get("path") or o.get("function") or f"step {i}"
        out.extend(line.rstrip("\n") for line in difflib.unified_diff(
            o["text"].splitlines(True), n["text"].splitlines(True), f"{key} {what} (ran)", f"{key} {what} (now)"))
    return out
