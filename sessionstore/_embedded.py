"""The embedded server: fakeredis in the process, for trying the store without a Redis.

fakeredis runs each EVAL by compiling the script's text anew. The store's scripts are 21-25 KB
each (``lua/index.lua`` and ``lua/lib.lua`` go in front of every one), so compiling took about
a third of a create and over a third of a listing. Redis keeps a script compiled from its
first run; the embedded server does too: its Lua runtime keeps each script's compiled chunk,
keyed by its text, and runs that. Nothing else changes: the same runtime, the same globals,
the same errors.

Bound: at most ``COMPILED`` chunks a server; past that the least recently run is dropped (a
store runs 13 scripts; the rest are other callers' EVALs). fakeredis runs every command under
its server's lock, so the map needs no lock of its own.
"""

from __future__ import annotations

import importlib
import threading
from collections import OrderedDict
from typing import Any

COMPILED = 256  # compiled scripts kept per server


_shared: Any = None
_shared_made = threading.Lock()
_made: type | None = None


def shared_server() -> Any:
    """The process's embedded server: every store made without a URL shares it."""
    global _shared
    with _shared_made:
        if _shared is None:
            _shared = new_server()
        return _shared


def new_server() -> Any:
    """A fresh embedded server (fakeredis.FakeServer) that keeps its scripts compiled."""
    return _server_class()()


def _server_class() -> type:
    global _made
    if _made is None:
        fakeredis = package()

        class EmbeddedServer(fakeredis.FakeServer):  # type: ignore[misc, name-defined]
            """fakeredis's server; its Lua runtime, made at its first script, keeps scripts
            compiled (fakeredis stores the runtime it makes on the server)."""

            def __setattr__(self, name: str, value: Any) -> None:
                if name == "_lua_runtime" and not isinstance(value, CompiledScripts):
                    value = CompiledScripts(value)
                super().__setattr__(name, value)

        _made = EmbeddedServer
    return _made


def package() -> Any:
    """The embedded server's package, imported only when a store runs without a URL."""
    try:
        return importlib.import_module("fakeredis")
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            "the embedded store needs fakeredis: pip install 'sessionstore[embedded]', "
            "or give a Redis URL"
        ) from None


class CompiledScripts:
    """A Lua runtime (lupa's) whose ``execute`` runs a kept compiled chunk of the same text."""

    __slots__ = ("_compiled", "_runtime")

    def __init__(self, runtime: Any) -> None:
        self._runtime = runtime
        self._compiled: OrderedDict[bytes | str, Any] = OrderedDict()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._runtime, name)

    def execute(self, code: bytes | str, *args: Any) -> Any:
        chunk = self._compiled.get(code)
        if chunk is None:
            chunk = self._runtime.compile(code)  # a syntax error raises here, as execute would
            self._compiled[code] = chunk
            if len(self._compiled) > COMPILED:
                self._compiled.popitem(last=False)
        else:
            self._compiled.move_to_end(code)
        return chunk(*args)
