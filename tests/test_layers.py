"""Layers and import circles of ``src/bmoe``, read from the source with ``ast`` (nothing is imported).

docs/design.md: ``cli`` -> ``net``, ``serve``, ``explorer``, ``experiments`` -> ``run`` -> ``protocol`` -> ``moe``,
``edge``, ``ledger``, ``ethereum``, ``consensus``, ``data``, ``lm`` -> ``verify``, ``storage``; nothing imports upward.
What these tests hold the tree to:

* no module imports a layer above its own (:data:`RANK`; the command line is the top, the utilities at bmoe's top
  the bottom): at a module's top or inside a function alike (an import deferred into a function still runs
  upward, and it is how upward imports hid before);
* no import circle at module level (the order modules initialise in), counting the packages an import runs;
* among all imports, functions included, no circle but the registries' named in :data:`REGISTRIES` (a registry
  imports its entries when first asked, and each entry imports the registry to register itself);
* ``net``'s role folders (and the modules at its top that several roles share) import each other without a
  circle, functions included: ``http/`` at the bottom, ``cluster/`` at the top.

``python -m tests.test_layers`` prints the circles and the upward imports it finds.
"""

from __future__ import annotations

import ast
import functools
import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src"
# DESIGN.md's layers, from the top: an import may stay in its rank or go down, never up. Modules at bmoe's top
# (fileio, credentials, console, ...) are utilities every layer may use; they import no layer.
RANK = {"cli": 5, "__main__": 5, "net": 4, "serve": 4, "explorer": 4, "experiments": 4, "run": 3, "protocol": 2,
        "moe": 1, "edge": 1, "ledger": 1, "ethereum": 1, "consensus": 1, "lm": 1, "data": 1, "verify": 0, "storage": 0}
# The command line: bmoe.cli (module or package), the loose `bmoe.*_command` modules and `python -m bmoe`.
COMMAND_LINE = re.compile(r"bmoe\.(cli|__main__|\w+_command)(\..*)?$")
# Intentional circles, by name: a registry and its entries (edge/behaviour.py's `register`, edge/attacks/).
REGISTRIES = (re.compile(r"bmoe\.edge\.(behaviour|attacks(\..*)?)$"),)


@dataclass(frozen=True)
class Import:
    target: str  # a module of the tree
    top: bool  # run when the importer is imported (not inside a function, not under TYPE_CHECKING)


def module_names(source: Path) -> dict[str, Path]:
    """Every module under ``source`` by its dotted name (a package by its ``__init__.py``)."""
    names = {}
    for path in sorted(source.rglob("*.py")):
        parts = list(path.relative_to(source).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imported(node: ast.Import | ast.ImportFrom, module: str, is_package: bool, modules: dict[str, Path]) -> list[str]:
    """The tree's modules one import statement names (``from P import m`` names the submodule ``P.m``)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = module
    if node.level:
        parts = module.split(".") if is_package else module.split(".")[:-1]
        base = ".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    return [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]


@functools.cache
def all_imports(source: Path) -> dict[str, list[Import]]:
    """Every module of ``source`` -> what it imports from the tree (each file parsed once)."""
    modules = module_names(source)
    return {module: imports_of(module, modules) for module in modules}


def imports_of(module: str, modules: dict[str, Path]) -> list[Import]:
    """What ``module`` imports from the tree, with whether each import runs at its top."""
    found: list[Import] = []
    is_package = modules[module].name == "__init__.py"

    def visit(nodes: Iterable[ast.stmt], top: bool) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and _type_checking(node):
                continue
            if isinstance(node, ast.Import | ast.ImportFrom):
                found.extend(Import(name, top) for name in _imported(node, module, is_package, modules))
            inner = top and not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            for field in ("body", "orelse", "finalbody"):
                children = getattr(node, field, None)
                if isinstance(children, list):
                    visit(children, inner)
            for clause in [*getattr(node, "handlers", ()), *getattr(node, "cases", ())]:  # except, case
                visit(clause.body, inner)

    visit(ast.parse(modules[module].read_text()).body, True)
    return [found_import for found_import in found if found_import.target in modules and found_import.target != module]


def _ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def import_graph(source: Path, top_only: bool) -> dict[str, set[str]]:
    """Module -> the modules importing it runs; a target's packages count (their ``__init__`` runs first) unless
    they are the importer's own."""
    modules = module_names(source)
    graph: dict[str, set[str]] = {}
    for module, found_imports in all_imports(source).items():
        targets = {found.target for found in found_imports if found.top or not top_only}
        own = set(_ancestors(module))
        graph[module] = targets | {p for t in targets for p in _ancestors(t) if p not in own and p in modules}
        graph[module].discard(module)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan's algorithm, iterative)."""
    counter = itertools.count()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = next(counter)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = next(counter)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _layer(module: str) -> str:
    return module.split(".")[1] if module.count(".") >= 1 else ""


def _rank(module: str) -> int:
    """The module's layer rank; a utility at bmoe's top ranks below every layer, the command line above all."""
    return 5 if COMMAND_LINE.match(module) else RANK.get(_layer(module), -1)


def upward_imports(source: Path) -> list[str]:
    """``importer -> target`` for every import, functions included, that runs up the layers (:data:`RANK`)."""
    found = []
    for module, found_imports in all_imports(source).items():
        for target in {found_import.target for found_import in found_imports}:
            if _rank(target) > _rank(module):
                found.append(f"{module} -> {target}")
    return sorted(found)


def _registry(component: list[str]) -> bool:
    return any(all(pattern.match(member) for member in component) for pattern in REGISTRIES)


def net_role_graph(source: Path) -> dict[str, set[str]]:
    """``net``'s units: a role folder (``bmoe.net.store``) or a module at net's top; an edge per import, functions
    included."""
    modules = module_names(source)

    def unit(module: str) -> str:
        parts = module.split(".")
        return ".".join(parts[:3]) if len(parts) > 3 or (len(parts) == 3 and modules[module].name == "__init__.py") \
            else module

    graph: dict[str, set[str]] = {}
    for module, found_imports in all_imports(source).items():
        if not module.startswith("bmoe.net."):
            continue
        targets = {unit(found.target) for found in found_imports if found.target.startswith("bmoe.net.")}
        graph.setdefault(unit(module), set()).update(targets - {unit(module)})
    return graph


def test_no_module_imports_up_the_layers() -> None:
    assert upward_imports(SOURCE) == []


def test_no_import_circle_at_module_level() -> None:
    assert circles(import_graph(SOURCE, top_only=True)) == []


def test_import_circles_through_functions_are_the_registries_alone() -> None:
    assert [component for component in circles(import_graph(SOURCE, top_only=False)) if not _registry(component)] == []


def test_net_role_folders_import_each_other_without_a_circle() -> None:
    graph = net_role_graph(SOURCE)
    assert {"bmoe.net.http", "bmoe.net.store", "bmoe.net.validator", "bmoe.net.edge", "bmoe.net.publish",
            "bmoe.net.cluster"} <= set(graph)
    assert circles(graph) == []


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


@pytest.fixture
def bad_tree(tmp_path: Path) -> Path:
    """A tree that breaks every rule: the ledger imports net in a function, net imports the command line, two
    modules import each other at their tops, two net role folders import each other."""
    return _write(tmp_path, {
        "bmoe/__init__.py": "", "bmoe/cli.py": "", "bmoe/ledger/__init__.py": "", "bmoe/net/__init__.py": "",
        "bmoe/ledger/state.py": "def f():\n    from bmoe.net.store import client\n",
        "bmoe/net/store/__init__.py": "", "bmoe/net/store/client.py": "from bmoe.net.edge.node import x\n",
        "bmoe/net/edge/__init__.py": "", "bmoe/net/edge/node.py": "from ..store import client\nimport bmoe.cli\n",
    })


def test_the_checks_find_what_they_forbid(bad_tree: Path) -> None:
    assert upward_imports(bad_tree) == ["bmoe.ledger.state -> bmoe.net.store.client", "bmoe.net.edge.node -> bmoe.cli"]
    assert circles(import_graph(bad_tree, top_only=True)) == [["bmoe.net.edge.node", "bmoe.net.store.client"]]
    assert circles(import_graph(bad_tree, top_only=False)) == [["bmoe.net.edge.node", "bmoe.net.store.client"]]
    assert circles(net_role_graph(bad_tree)) == [["bmoe.net.edge", "bmoe.net.store"]]


def test_a_registry_circle_is_allowed_by_name_only(tmp_path: Path) -> None:
    tree = _write(tmp_path, {
        "bmoe/__init__.py": "", "bmoe/edge/__init__.py": "", "bmoe/edge/attacks/__init__.py": "from . import a\n",
        "bmoe/edge/behaviour.py": "def load():\n    from bmoe.edge import attacks\n",
        "bmoe/edge/attacks/a.py": "from bmoe.edge.behaviour import load\n",
        "bmoe/edge/other.py": "def f():\n    from bmoe.edge import third\n",
        "bmoe/edge/third.py": "from . import other\n",
    })
    found = circles(import_graph(tree, top_only=False))
    assert [component for component in found if _registry(component)] == [
        ["bmoe.edge.attacks", "bmoe.edge.attacks.a", "bmoe.edge.behaviour"]]
    assert [component for component in found if not _registry(component)] == [["bmoe.edge.other", "bmoe.edge.third"]]


if __name__ == "__main__":
    print("upward imports:", *upward_imports(SOURCE) or ["none"], sep="\n  ")
    print("circles at module level:", *circles(import_graph(SOURCE, top_only=True)) or ["none"], sep="\n  ")
    print("circles through functions:", *circles(import_graph(SOURCE, top_only=False)) or ["none"], sep="\n  ")
    print("circles among net's role folders:", *circles(net_role_graph(SOURCE)) or ["none"], sep="\n  ")
