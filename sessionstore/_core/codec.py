"""How a Session is laid out in its Redis hash.

Every field name and value stays at most 64 bytes, so Redis keeps the hash in its compact
listpack encoding (``hash-max-listpack-value``): one longer value would convert the whole hash
to a hashtable and cost about 3.5x the memory. The user agent is therefore split into 64-byte
chunks ``ua0``, ``ua1``, ... Times are integer milliseconds since the epoch.

=====  ==================================  =====  ==================================
field  meaning                             field  meaning
=====  ==================================  =====  ==================================
v      layout version (``2``)              h      SHA-256 of the token's secret
u      user id                             ip     IP address, packed (4 or 16 bytes)
uaN    user agent, 64-byte chunks          am     auth method
dt     device type                         do     device os
db     device browser                      lc/lk  location city / country (optional)
m      ``1`` when MFA was verified         c      created at
a      last active at                      x      expires at (idle or absolute)
X      absolute expiry, when an idle timeout makes it differ from x
b      ``1`` once device bound (DBSC)      kN     the bound public key (a JWK), chunks
nN     outstanding DBSC challenges (binding.py; lua/challenges.lua), up to four
=====  ==================================  =====  ==================================

Scripts and reads return a session as ``VIEW``: the values of these fields in this order
(HMGET), so the field names never cross the wire; decoding finds each by its name's
place. scripts.py hands the same list to the Lua scripts, so it is written only here.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import lru_cache
from typing import Final, cast

from ..model import AuthMethod, Device, DeviceType, Location, Session, from_ms, to_ms

VERSION: Final = b"2"
CHUNK: Final = 64
MAX_AGENT_CHUNKS: Final = 16  # inputs.MAX_USER_AGENT_BYTES / CHUNK
VIEW: Final = (
    "h", "x", "a", "X", "u", "ip", "am", "m", "dt", "do", "db", "c", "lc", "lk", "b",
    *(f"ua{index}" for index in range(MAX_AGENT_CHUNKS)),
)  # fmt: skip
_PLACE: Final = {field: place for place, field in enumerate(VIEW)}  # the agent's chunks last
_VIEW_NAMES: Final = tuple(field.encode() for field in VIEW)
# The fields a session's scripts change after its creation; everything else is fixed. The
# hot path reads only these for a session whose fixed parts it remembers (fixed.py).
# ``b`` is 0 until a session is bound, and absent in sessions created before it was written
# at creation: absent is unbound, never a hash cut short.
MOVING: Final = ("x", "a", "m", "b")
_MOVING_AT_CREATION: Final = 3  # the MOVING fields every session has from its creation


def session_fields(session: Session, absolute_expiry_ms: int) -> list[bytes | str | int]:
    """The hash fields of a new session, as a flat field, value list (without ``h``).

    The MOVING fields come first, ``b`` among them: a small hash is a list Redis reads from
    the front, and the hot path's HMGET of them took 1.7 µs of Redis CPU with them behind
    the fixed fields and ``b`` absent (a read of every field), 1.0 µs with them in front."""
    expires = to_ms(session.expires_at)
    fields: list[bytes | str | int] = [
        "x", expires,
        "a", to_ms(session.last_active_at),
        "m", 1 if session.mfa_verified else 0,
        "b", 0,
        "v", VERSION,
        "u", session.user_id,
        "ip", packed_ip(session.ip_address),
        "am", session.auth_method,
        "dt", session.device.type,
        "do", _clip(session.device.os),
        "db", _clip(session.device.browser),
        "c", to_ms(session.created_at),
    ]  # fmt: skip
    if absolute_expiry_ms != expires:
        fields += ["X", absolute_expiry_ms]
    agent = session.user_agent.encode()
    for index in range(0, len(agent), CHUNK):
        fields += [f"ua{index // CHUNK}", agent[index : index + CHUNK]]
    if session.location is not None:
        if session.location.city:
            fields += ["lc", _clip(session.location.city)]
        if session.location.country:
            fields += ["lk", _clip(session.location.country)]
    return fields


def view_of(whole: Mapping[bytes, bytes] | Sequence[bytes]) -> list[bytes | None]:
    """The VIEW values of a whole hash: HGETALL's reply, a map or a flat field, value list.
    (HGETALL costs Redis about half of an HMGET of every VIEW name, most of them absent.)"""
    fields = (
        whole if isinstance(whole, Mapping) else dict(zip(whole[::2], whole[1::2], strict=True))
    )
    return [fields.get(name) for name in _VIEW_NAMES]


def decode_view(session_id: str, view: Sequence[bytes | None]) -> Session:
    """Build a Session from its ``VIEW`` values (an HMGET reply, or a script's), by name."""
    at = cast("Sequence[bytes]", view).__getitem__  # the fields written at creation, never None
    city, country = view[_PLACE["lc"]], view[_PLACE["lk"]]
    location = None if city is None and country is None else Location(_text(city), _text(country))
    return Session(
        id=session_id,
        user_id=int(at(_PLACE["u"])),
        ip_address=ip_text(at(_PLACE["ip"])),
        user_agent=b"".join(filter(None, view[_PLACE["ua0"] :])).decode(errors="replace"),
        device=_device(at(_PLACE["dt"]), at(_PLACE["do"]), at(_PLACE["db"])),
        location=location,
        auth_method=cast(AuthMethod, at(_PLACE["am"]).decode()),
        mfa_verified=at(_PLACE["m"]) == b"1",
        created_at=from_ms(int(at(_PLACE["c"]))),
        last_active_at=from_ms(int(at(_PLACE["a"]))),
        expires_at=from_ms(int(at(_PLACE["x"]))),
        device_bound=view[_PLACE["b"]] == b"1",
    )


_WRITTEN_AT_CREATION: Final = tuple(
    _PLACE[field] for field in ("h", "x", "a", "u", "ip", "am", "m", "dt", "do", "db", "c")
)


def complete(view: Sequence[bytes | None]) -> bool:
    """Whether a hash holds every field its creation wrote: one written or cut short outside
    the scripts must not decode into a Session."""
    return all(view[place] is not None for place in _WRITTEN_AT_CREATION)


def moved(session: Session, values: Sequence[bytes | None]) -> Session:
    """``session`` with its MOVING fields as ``values`` (their HMGET reply) say; the same
    object when nothing moved, so a frozen answer can be handed out again."""
    expires, active = int(cast(bytes, values[0])), int(cast(bytes, values[1]))
    mfa, bound = values[2] == b"1", values[3] == b"1"
    if (expires, active, mfa, bound) == (
        to_ms(session.expires_at),
        to_ms(session.last_active_at),
        session.mfa_verified,
        session.device_bound,
    ):
        return session
    return replace(
        session,
        expires_at=from_ms(expires),
        last_active_at=from_ms(active),
        mfa_verified=mfa,
        device_bound=bound,
    )


def cut_short(values: Sequence[bytes | None]) -> bool:
    """Whether a MOVING reply lacks a field every session has from its creation (written or
    cut short outside the scripts); ``b`` may be absent."""
    return None in values[:_MOVING_AT_CREATION]


def packed_ip(address: str) -> bytes:
    """4 or 16 bytes: what the hash stores and the IP index entries are made of."""
    return ipaddress.ip_address(address).packed


@lru_cache(maxsize=4096)
def ip_text(packed: bytes) -> str:
    return str(ipaddress.ip_address(packed))


@lru_cache(maxsize=1024)
def _device(kind: bytes, os: bytes, browser: bytes) -> Device:
    # Few distinct devices recur across millions of sessions: decode each once.
    return Device(cast(DeviceType, kind.decode()), os.decode(), browser.decode())


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode()


def _clip(text: str) -> bytes:
    return text.encode()[:CHUNK].decode(errors="ignore").encode()
