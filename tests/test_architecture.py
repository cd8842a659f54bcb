"""The package's shape, held by tests: no import cycles, a core that never touches redis,
middleware that never reaches into the admin API, a public surface that says what it is.

The graph is read from the source (every ``import`` and ``from ... import``, lazy ones and
``TYPE_CHECKING`` ones included), so it holds for code paths no test happens to import.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

import sessionstore

ROOT = Path(sessionstore.__file__).parent
# What a sans-I/O core must never reach: a client, a server, a web framework.
IO_PACKAGES = {"redis", "hiredis", "fakeredis", "httpx", "starlette", "uvicorn", "asyncio"}


@cache
def modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imported(name: str, path: Path) -> set[str]:
    """Every module ``name`` imports: its own package's by full name, others by top level."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            for alias in node.names:
                whole = f"{base}.{alias.name}"
                found.add(whole if whole in modules() else base)
    return {
        module if module.startswith("sessionstore") else module.partition(".")[0]
        for module in found
        if module != name
    }


@cache
def graph() -> dict[str, frozenset[str]]:
    return {name: frozenset(_imported(name, path)) for name, path in modules().items()}


def reach(start: str) -> set[str]:
    """What importing ``start`` may import, inside the package and out (parents' __init__
    aside: they run first whatever a module imports)."""
    seen, todo = set(), [start]
    while todo:
        for child in graph().get(todo.pop(), ()):
            if child not in seen:
                seen.add(child)
                todo.append(child)
    return seen


def cycles() -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for child in sorted(graph()[node] & graph().keys()):
            if child not in index:
                visit(child)
                low[node] = min(low[node], low[child])
            elif child in stack:
                low[node] = min(low[node], index[child])
        if low[node] == index[node]:
            group = []
            while (member := stack.pop()) != node:
                group.append(member)
            if group:
                found.append(sorted([node, *group]))

    for node in sorted(graph()):
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_the_imports_it_must() -> None:
    # The checks below mean something only if the parser finds real edges.
    assert "redis" in graph()["sessionstore._connection"]
    assert "sessionstore._core.operations" in graph()["sessionstore._base"]
    assert "sessionstore._core.flows" in reach("sessionstore.store")


def test_no_module_imports_itself_back() -> None:
    assert cycles() == []


def test_the_core_never_imports_io() -> None:
    core = [name for name in modules() if name.startswith("sessionstore._core")]
    assert len(core) > 10
    for name in core:
        assert not reach(name) & IO_PACKAGES, (name, reach(name) & IO_PACKAGES)
        drivers = {m for m in reach(name) if m.startswith("sessionstore.") and "_core" not in m}
        # It may use the public data types (model, errors, config, geo), never a driver.
        assert drivers <= {
            "sessionstore.model",
            "sessionstore.errors",
            "sessionstore.config",
            "sessionstore.geo",
        }, (name, drivers)


def test_importing_the_core_loads_no_client() -> None:
    """The same, at run time: a fresh interpreter imports every core module (and so the
    package's root) and has loaded no redis, fakeredis or web framework."""
    core = sorted(name for name in modules() if name.startswith("sessionstore._core."))
    program = "import sys\n" + "".join(f"import {name}\n" for name in core)
    program += f"loaded = sorted(set(sys.modules) & set({sorted(IO_PACKAGES - {'asyncio'})!r}))\n"
    program += "assert not loaded, loaded\n"
    subprocess.run([sys.executable, "-c", program], check=True, cwd=ROOT.parent)


def test_the_middleware_never_imports_the_admin_api() -> None:
    middleware = [name for name in modules() if name.startswith("sessionstore.middleware")]
    assert middleware
    for name in middleware:
        assert not {m for m in reach(name) if m.startswith("sessionstore.admin")}, name


def test_webhook_signing_needs_no_client() -> None:
    assert not reach("sessionstore.webhooks.signing") & (IO_PACKAGES - {"asyncio"})


@pytest.mark.parametrize(
    "name", sorted(n for n in modules() if not any(p.startswith("_") for p in n.split(".")))
)
def test_every_public_module_says_what_it_exports(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__doc__, f"{name} has no docstring"
    assert hasattr(module, "__all__"), f"{name} has no __all__"
    for export in module.__all__:
        assert hasattr(module, export), (name, export)


def test_every_public_method_of_the_stores_states_its_contract() -> None:
    for store in (sessionstore.SessionStore, sessionstore.AsyncSessionStore):
        for method_name, method in inspect.getmembers(store, inspect.isfunction):
            if not method_name.startswith("_"):
                assert inspect.getdoc(method), f"{store.__name__}.{method_name}"


def test_public_modules_are_found_by_name() -> None:
    # pkgutil sees the same modules as the graph (no stray file is left out of either).
    walked = {info.name for info in pkgutil.walk_packages([str(ROOT)], "sessionstore.")}
    assert walked == set(modules()) - {"sessionstore"}


def test_every_public_definition_states_its_contract() -> None:
    """Classes, functions and methods of the public modules (no ``_`` in their path or name)."""
    missing = []
    for name, path in modules().items():
        if any(part.startswith("_") for part in name.split(".")):
            continue
        for node in ast.parse(path.read_text()).body:
            public_class = isinstance(node, ast.ClassDef) and not node.name.startswith("_")
            inner = node.body if public_class else []
            for item in [node, *inner]:
                definition = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
                if isinstance(item, definition) and not item.name.startswith("_"):
                    if not ast.get_docstring(item):
                        missing.append(f"{name}:{item.lineno} {item.name}")
    assert missing == []
