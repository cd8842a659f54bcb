"""The Lua scripts in ``lua/``, read once from the package and called by SHA.

Redis caches scripts by SHA1; a restart, failover or ``SCRIPT FLUSH`` empties that cache, so
the drivers answer NOSCRIPT by loading the source and running the call again (every script
is safe to run twice).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True, slots=True)
class Script:
    name: str
    source: bytes
    sha: str

    def __repr__(self) -> str:
        return f"Script({self.name!r})"


def _load(name: str) -> Script:
    source = resources.files("sessionstore").joinpath("lua", f"{name}.lua").read_bytes()
    return Script(name, source, hashlib.sha1(source, usedforsecurity=False).hexdigest())


CREATE = _load("create")
VALIDATE = _load("validate")
READ = _load("read")
REVOKE = _load("revoke")
REVOKE_ALL = _load("revoke_all")
LIST_USER = _load("list_user")
UPDATE = _load("update")

ALL = (CREATE, VALIDATE, READ, REVOKE, REVOKE_ALL, LIST_USER, UPDATE)
