"""The Lua scripts in ``lua/``, read once from the package and called by SHA.

Each script is sent with ``lua/index.lua`` (the chunked indexes) and ``lua/lib.lua`` in front
of it, so the shared steps are written once. The session hash's fields are written once too,
in codec.VIEW: a script says ``unpack(VIEW)`` for the list and ``AT.x`` for the place of field
``x`` in it, and both become literals here, so Redis builds no table per call for them. Event
types and reasons are ``EVENT.created`` and ``REASON.bulk`` (kinds.py), literals too; an
unknown name fails the import, not a call.
Redis caches scripts by SHA1; a restart, failover or ``SCRIPT FLUSH`` empties that cache, so
the drivers answer NOSCRIPT by loading the source and running the call again (every script
is safe to run twice).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

from .codec import VIEW
from .keys import MEMO_MS
from .kinds import EventType, Reason


@dataclass(frozen=True, slots=True)
class Script:
    name: str
    source: bytes
    sha: str
    # Its answer is kept for a retry of the same call (lib.lua: remember; flows.ScriptCall).
    remembered: bool = False

    def __repr__(self) -> str:
        return f"Script({self.name!r})"


def _read(name: str) -> bytes:
    return resources.files("sessionstore").joinpath("lua", f"{name}.lua").read_bytes()


def _load(name: str, *shared: str, remembered: bool = False) -> Script:
    """A script with index.lua, lib.lua and the ``shared`` parts it names in front of it.

    A remembered script's own code becomes a function that lib.lua's ``remember`` runs once
    per call: the call's memo key, the last of KEYS, is taken off before that code reads KEYS.
    """
    body = _read(name)
    if remembered:
        body = (
            b"local function answer()\n"
            + body
            + b"end\nreturn remember(table.remove(KEYS), answer)\n"
        )
    parts = [_read("index"), _read("lib"), *(_read(part) for part in shared), body]
    source = b"".join(parts).decode().replace("unpack(VIEW)", _FIELDS)
    source = re.sub(r"\bMEMO_MS\b", str(MEMO_MS), source)
    source = re.sub(r"\bAT\.(\w+)", lambda field: str(_PLACE[field[1]]), source)
    source = re.sub(r"\bEVENT\.(\w+)", lambda kind: f"'{_EVENTS[kind[1]]}'", source)
    source = re.sub(r"\bREASON\.(\w+)", lambda reason: f"'{_REASONS[reason[1]]}'", source)
    encoded = source.encode()
    sha = hashlib.sha1(encoded, usedforsecurity=False).hexdigest()
    return Script(name, encoded, sha, remembered)


_PLACE = {field: place for place, field in enumerate(VIEW, start=1)}
_FIELDS = ", ".join(f"'{field}'" for field in VIEW)
_EVENTS = {kind.script_name: kind.code for kind in EventType}
_REASONS = {reason.name.lower(): reason.code for reason in Reason}


CREATE = _load("create")
VALIDATE = _load("validate")
READ = _load("read")
# A second run of these answers otherwise than the first: a revocation finds nothing left to
# end, a challenge is used up. Their first answer is kept for a retry (lib.lua: remember).
REVOKE = _load("revoke", remembered=True)
REVOKE_ALL = _load("revoke_all", remembered=True)
REVOKE_WHERE = _load("revoke_where", remembered=True)
LIST_USER = _load("list_user")
UPDATE = _load("update")
PAGE = _load("page")

# Parts of scripts, not scripts: index.lua and lib.lua go in front of every script, and device
# binding's (DBSC, binding.py) shared steps, a session's challenges, in challenges.lua after.
SHARED = ("index", "lib", "challenges")
CHALLENGE = _load("challenge", "challenges")
BIND = _load("bind", "challenges", remembered=True)
PROVE = _load("prove", "challenges", remembered=True)
BINDING_FAILED = _load("binding_failed", "challenges")

ALL = (
    CREATE, VALIDATE, READ, REVOKE, REVOKE_ALL, REVOKE_WHERE, LIST_USER, UPDATE, PAGE,
    CHALLENGE, BIND, PROVE, BINDING_FAILED,
)  # fmt: skip

# Not run by a store's operations: ``sessionstore migrate`` puts layout 2's whole indexes into
# chunks with it (operations.Core.rechunk), through the same drivers.
RECHUNK = _load("rechunk")

# Not a session script (no bucket, no session fields): webhooks/registry.py calls it through
# the same drivers (AsyncSessionStore.run_script: NOSCRIPT and slot moves handled alike).
WEBHOOK_ADD = _load("webhook_add")
