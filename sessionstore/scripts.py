"""The Lua scripts in ``lua/``, read once from the package and called by SHA.

Each script is sent with ``lua/lib.lua`` in front of it, and before that the session hash's
field list from codec.VIEW, so the field names and the shared steps are written once.
Redis caches scripts by SHA1; a restart, failover or ``SCRIPT FLUSH`` empties that cache, so
the drivers answer NOSCRIPT by loading the source and running the call again (every script
is safe to run twice).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

from .codec import VIEW


@dataclass(frozen=True, slots=True)
class Script:
    name: str
    source: bytes
    sha: str

    def __repr__(self) -> str:
        return f"Script({self.name!r})"


def _read(name: str) -> bytes:
    return resources.files("sessionstore").joinpath("lua", f"{name}.lua").read_bytes()


def _prelude() -> bytes:
    names = ", ".join(f"'{field}'" for field in VIEW)
    places = ", ".join(f"['{field}'] = {place}" for place, field in enumerate(VIEW, start=1))
    return f"local VIEW = {{{names}}}\nlocal AT = {{{places}}}\n".encode() + _read("lib")


def _load(name: str) -> Script:
    source = _PRELUDE + _read(name)
    return Script(name, source, hashlib.sha1(source, usedforsecurity=False).hexdigest())


_PRELUDE = _prelude()


CREATE = _load("create")
VALIDATE = _load("validate")
READ = _load("read")
REVOKE = _load("revoke")
REVOKE_ALL = _load("revoke_all")
LIST_USER = _load("list_user")
UPDATE = _load("update")
PAGE = _load("page")

ALL = (CREATE, VALIDATE, READ, REVOKE, REVOKE_ALL, LIST_USER, UPDATE, PAGE)
