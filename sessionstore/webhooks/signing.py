"""Standard Webhooks signatures (https://www.standardwebhooks.com/): what a delivery carries.

Every delivery is a POST of ``payload(event)`` with three headers:

    webhook-id: <event id>              the same on every attempt: receivers drop repeats by it
    webhook-timestamp: <unix seconds>   when this attempt was made
    webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">

keyed by the base64-decoded part of the endpoint's secret ``whsec_<base64>`` (``new_secret``).
The body is ``{"type", "timestamp", "data"}``: the event's type, its time, and its
``to_dict()``.

A receiver needs only ``verify``: this module imports neither an HTTP client, nor Redis, nor
the rest of the webhooks package.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

from ..model import isoformat

if TYPE_CHECKING:
    from .._core.events import Event

__all__ = ["SECRET_BYTES", "SECRET_PREFIX", "new_secret", "payload", "sign", "verify"]

SECRET_PREFIX: Final = "whsec_"  # noqa: S105 (a prefix, not a secret)
SECRET_BYTES: Final = 32


def new_secret() -> str:
    """A new endpoint secret: ``whsec_`` and the base64 of SECRET_BYTES random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value of a message: ``v1,<base64 HMAC-SHA256>``."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance: float = 300,
    now: float | None = None,
) -> bool:
    """What a receiver checks: one of the ``v1`` signatures matches, and the timestamp is
    within ``tolerance`` seconds of now (a replayed old message is refused)."""
    message_id = headers["webhook-id"]
    timestamp = int(headers["webhook-timestamp"])
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = sign(secret, message_id, timestamp, body)
    return any(
        hmac.compare_digest(expected, candidate)
        for candidate in headers["webhook-signature"].split(" ")
    )


def payload(event: Event) -> bytes:
    """The body of an event's delivery: the same bytes on every attempt."""
    body = {"type": event.type, "timestamp": isoformat(event.at), "data": event.to_dict()}
    return json.dumps(body, separators=(",", ":")).encode()
