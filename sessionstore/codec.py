"""How a Session is laid out in its Redis hash.

Every field name and value stays at most 64 bytes, so Redis keeps the hash in its compact
listpack encoding (``hash-max-listpack-value``): one longer value would convert the whole hash
to a hashtable and cost about 3.5x the memory. The user agent is therefore split into 64-byte
chunks ``ua0``, ``ua1``, ... Times are integer milliseconds since the epoch.

=====  ==================================  =====  ==================================
field  meaning                             field  meaning
=====  ==================================  =====  ==================================
v      layout version (``1``)              h      SHA-256 of the token's secret
u      user id                             ip     IP address, normalised
uaN    user agent, 64-byte chunks          am     auth method
dt     device type                         do     device os
db     device browser                      lc/lk  location city / country (optional)
m      ``1`` when MFA was verified         c      created at
a      last active at                      x      expires at (idle or absolute)
X      absolute expiry, when an idle timeout makes it differ from x
=====  ==================================  =====  ==================================
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, cast

from .model import AuthMethod, Device, DeviceType, Location, Session, from_ms

VERSION: Final = b"1"
CHUNK: Final = 64


def session_fields(session: Session, absolute_expiry_ms: int) -> list[bytes | str | int]:
    """The hash fields of a new session, as a flat field, value list (without ``h``)."""
    fields: list[bytes | str | int] = [
        "v", VERSION,
        "u", session.user_id,
        "ip", session.ip_address,
        "am", session.auth_method,
        "m", 1 if session.mfa_verified else 0,
        "dt", session.device.type,
        "do", _clip(session.device.os),
        "db", _clip(session.device.browser),
        "c", _ms(session.created_at),
        "a", _ms(session.last_active_at),
        "x", _ms(session.expires_at),
    ]  # fmt: skip
    if absolute_expiry_ms != fields[-1]:
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


def decode_session(session_id: str, flat: list[bytes]) -> Session:
    """Build a Session from an HGETALL reply (a flat field, value list)."""
    raw = dict(zip(flat[::2], flat[1::2], strict=True))
    city, country = raw.get(b"lc"), raw.get(b"lk")
    location = None
    if city is not None or country is not None:
        location = Location(_text(city), _text(country))
    return Session(
        id=session_id,
        user_id=int(raw[b"u"]),
        ip_address=raw[b"ip"].decode(),
        user_agent=_user_agent(raw),
        device=Device(
            cast(DeviceType, raw[b"dt"].decode()), raw[b"do"].decode(), raw[b"db"].decode()
        ),
        location=location,
        auth_method=cast(AuthMethod, raw[b"am"].decode()),
        mfa_verified=raw[b"m"] == b"1",
        created_at=from_ms(int(raw[b"c"])),
        last_active_at=from_ms(int(raw[b"a"])),
        expires_at=from_ms(int(raw[b"x"])),
    )


def _user_agent(raw: dict[bytes, bytes]) -> str:
    chunks = []
    index = 0
    while (chunk := raw.get(b"ua%d" % index)) is not None:
        chunks.append(chunk)
        index += 1
    return b"".join(chunks).decode(errors="replace")


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode()


def _clip(text: str) -> bytes:
    return text.encode()[:CHUNK].decode(errors="ignore").encode()


def _ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)
