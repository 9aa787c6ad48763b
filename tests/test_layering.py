"""The package's layering, read from its source with `ast` (nothing is imported).

The module import graph of drypipe/ counts every import statement (top-level or inside a
function, relative ones resolved), except those under `if TYPE_CHECKING:`, which never run.
An edge goes to the module named (`from .x import y` -> x, or x.y when y is a module); a
package's __init__ is counted only when it is the module named.

The layers: state/ is the bottom (the DB, state files, the orchestrator lock); dsl/,
executors/ and runtime/ sit beside it; scheduler/ drives them; service/ drives many
orchestrators (drypipe service); cli/ is the top, imported by nothing but the `python -m drypipe`
entry point (drypipe/__main__.py).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = "drypipe"
ROOT = Path(__file__).resolve().parent.parent / PKG
MAX_LINES = 500
# the entry point of `python -m drypipe` is the one module outside cli/ that may import it
CLI_ENTRY_POINTS = {"drypipe.__main__"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(tree: ast.AST):
    """Every Import/ImportFrom node, at any depth, except in `if TYPE_CHECKING:` bodies."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
            continue
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The drypipe modules that module `name` imports."""
    is_pkg = path.name == "__init__.py"
    package = name if is_pkg else name.rpartition(".")[0]
    out = set()

    def add(target: str):
        # the longest prefix of target that is a module of ours
        while target and target not in modules:
            target = target.rpartition(".")[0]
        if target and target != name:
            out.add(target)

    for node in _import_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == PKG or alias.name.startswith(PKG + "."):
                    add(alias.name)
            continue
        if node.level:
            base_parts = package.split(".")
            if node.level > 1:
                base_parts = base_parts[:-(node.level - 1)]
            base = ".".join(base_parts)
            mod = f"{base}.{node.module}" if node.module else base
        else:
            mod = node.module or ""
        if not (mod == PKG or mod.startswith(PKG + ".")):
            continue
        for alias in node.names:
            sub = f"{mod}.{alias.name}"
            add(sub if sub in modules else mod)
    return out


def import_graph() -> dict[str, set[str]]:
    modules = all_modules()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def in_layer(module: str, layer: str) -> bool:
    full = f"{PKG}.{layer}"
    return module == full or module.startswith(full + ".")


def violations(graph, importers: list[str], forbidden: list[str]) -> list[str]:
    return sorted(f"{m} imports {t}" for m, targets in graph.items() for t in targets
                  if any(in_layer(m, i) for i in importers) and any(in_layer(t, f) for f in forbidden))


@pytest.fixture(scope="module")
def graph():
    return import_graph()


# -- the graph builder itself ---------------------------------------------------------------------

def test_the_graph_sees_relative_function_level_and_absolute_imports(tmp_path):
    modules = {"drypipe": Path("drypipe/__init__.py"), "drypipe.a": Path("drypipe/a.py"),
               "drypipe.sub": Path("drypipe/sub/__init__.py"), "drypipe.sub.b": Path("drypipe/sub/b.py"),
               "drypipe.sub.c": Path("drypipe/sub/c.py"), "drypipe.errors": Path("drypipe/errors.py")}
    src = tmp_path / "b.py"
    src.write_text("from typing import TYPE_CHECKING\n"
                   "from . import c\n"
                   "from ..errors import X\n"
                   "import drypipe.a\n"
                   "import os\n"
                   "if TYPE_CHECKING:\n"
                   "    from ..sub import nothing\n"
                   "def f():\n"
                   "    from .. import a\n"
                   "    from drypipe.sub.c import y\n")
    assert imports_of("drypipe.sub.b", src, modules) == {"drypipe.sub.c", "drypipe.errors", "drypipe.a"}
    pkg = tmp_path / "__init__.py"
    pkg.write_text("from .b import z\nfrom . import c\n")
    assert imports_of("drypipe.sub", pkg, modules) == {"drypipe.sub.b", "drypipe.sub.c"}
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_covers_the_package(graph):
    assert {"drypipe.dsl.builder", "drypipe.dsl.pipeline", "drypipe.state.db",
            "drypipe.scheduler.orchestrator", "drypipe.cli.main"} <= set(graph)
    assert "drypipe.dsl.task" in graph["drypipe.dsl.builder"]
    assert "drypipe.state.db" in graph["drypipe.api"]


# -- the layering ---------------------------------------------------------------------------------

def test_no_import_cycle_outside_the_scheduler(graph):
    """No cycle with a module outside scheduler/ in it (dsl/builder <-> dsl/pipeline was one)."""
    assert [c for c in cycles(graph) if not all(in_layer(m, "scheduler") for m in c)] == []


def test_no_import_cycle_between_modules(graph):
    assert cycles(graph) == []


def test_state_imports_neither_scheduler_nor_cli(graph):
    assert violations(graph, ["state"], ["scheduler", "cli"]) == []


def test_dsl_executors_and_runtime_import_neither_scheduler_nor_cli(graph):
    assert violations(graph, ["dsl", "executors", "runtime"], ["scheduler", "cli"]) == []


def test_only_the_cli_imports_the_cli(graph):
    bad = sorted(f"{m} imports {t}" for m, targets in graph.items() for t in targets
                 if in_layer(t, "cli") and not in_layer(m, "cli") and m not in CLI_ENTRY_POINTS)
    assert bad == []


def test_the_service_sits_between_the_scheduler_and_the_cli(graph):
    """service/ drives orchestrators (scheduler/); nothing below it knows it exists."""
    assert violations(graph, ["state", "dsl", "executors", "runtime", "scheduler"], ["service"]) == []
    assert violations(graph, ["service"], ["cli"]) == []
    assert "drypipe.scheduler.orchestrator" in graph["drypipe.service.service"]


def test_no_module_is_over_500_lines():
    sizes = {name: len(path.read_text().splitlines()) for name, path in all_modules().items()}
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}
