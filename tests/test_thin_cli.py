"""The CLI is thin, and no module reaches into another's private names; read from the source
with `ast` (nothing is imported).

- drypipe/cli/ parses, calls the library's public face (drypipe.api, the Orchestrator's public
  methods, the scheduler modules' public functions) and prints: it imports neither the database
  tables (drypipe.state.models), nor the state files (drypipe.state.statefile), nor an executor
  (drypipe.executors.*), and reads no `_private` attribute of anything but `self`/`cls`.
- Across drypipe/: an attribute `X._name` (one leading underscore, X not `self`/`cls`) whose name
  is defined in another module of the package, or a `from .module import _name`, is a private
  name used across modules: make it public instead.
"""
from __future__ import annotations

import ast
from pathlib import Path

PKG = "drypipe"
ROOT = Path(__file__).resolve().parent.parent / PKG
CLI = ROOT / "cli"

FORBIDDEN_IN_CLI = ("drypipe.state.models", "drypipe.state.statefile", "drypipe.executors")

# attributes with a leading underscore that are public API of the standard library
STDLIB_PUBLIC = {"os._exit"}

# Private names used across modules: (file, what). Keep it empty.
ALLOWED_CROSS_MODULE: set = set()


def rel(path: Path) -> str:
    return path.relative_to(ROOT.parent).as_posix()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def parse(path: Path) -> ast.AST:
    return ast.parse(path.read_text(), str(path))


def is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def is_self(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id in ("self", "cls")


def imported_modules(path: Path) -> set[str]:
    """Every module an import statement of `path` may name (relative imports resolved): for
    `from a import b`, both a and a.b."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(parse(path)):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                if node.level > 1:
                    base_parts = base_parts[:-(node.level - 1)]
                base = ".".join(base_parts)
                mod = f"{base}.{node.module}" if node.module else base
            else:
                mod = node.module or ""
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names)
    return out


def private_attributes(tree: ast.AST):
    """(node, text) of each `X._name` with X not self/cls."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and is_private(node.attr) and not is_self(node.value):
            yield node, ast.unparse(node)


def defined_private_names(tree: ast.AST) -> set[str]:
    """The private names a module defines: functions, classes, module/class/local variables,
    attributes set on self/cls, dataclass fields and __slots__ entries."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                for sub in ast.walk(t):
                    if isinstance(sub, ast.Name):
                        out.add(sub.id)
                    elif isinstance(sub, ast.Attribute) and is_self(sub.value):
                        out.add(sub.attr)
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__slots__"
                                                    for t in node.targets):
                for c in ast.walk(node.value):
                    if isinstance(c, ast.Constant) and isinstance(c.value, str):
                        out.add(c.value)
        elif isinstance(node, ast.alias) and node.asname:
            out.add(node.asname)
    return {n for n in out if is_private(n)}


def test_cli_does_not_import_tables_state_files_or_executors():
    bad = []
    for path in sorted(CLI.glob("*.py")):
        for mod in sorted(imported_modules(path)):
            if any(mod == f or mod.startswith(f + ".") for f in FORBIDDEN_IN_CLI):
                bad.append(f"{rel(path)} imports {mod}")
    assert not bad, "the CLI goes through drypipe.api / the orchestrator / the scheduler modules:\n" + \
        "\n".join(bad)


def test_cli_reads_no_private_attribute_of_another_object():
    bad = []
    for path in sorted(CLI.glob("*.py")):
        for node, text in private_attributes(parse(path)):
            if text not in STDLIB_PUBLIC:
                bad.append(f"{rel(path)}:{node.lineno}: {text}")
    assert not bad, "the CLI uses only public names of the library:\n" + "\n".join(bad)


def test_no_private_name_used_across_modules():
    trees = {p: parse(p) for p in sorted(ROOT.rglob("*.py"))}
    defined = {p: defined_private_names(t) for p, t in trees.items()}
    defined_anywhere = set().union(*defined.values())
    found = set()
    for path, tree in trees.items():
        for node, text in private_attributes(tree):
            if node.attr in defined_anywhere and node.attr not in defined[path]:
                found.add((rel(path), text, node.lineno))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith(PKG)):
                for a in node.names:
                    if is_private(a.name):
                        text = f"from {'.' * node.level}{node.module or ''} import {a.name}"
                        found.add((rel(path), text, node.lineno))
    bad = sorted(f"{f}:{line}: {text}" for f, text, line in found if (f, text) not in ALLOWED_CROSS_MODULE)
    assert not bad, "private names used outside their module (make them public):\n" + "\n".join(bad)
