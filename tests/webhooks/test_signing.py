"""Signatures, payloads and secrets (signing.py): no Redis, no network.

Also that a receiver can import ``verify`` alone: a fresh interpreter imports it and is
checked for what came with it.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

from sessionstore._core.events import Event
from sessionstore.webhooks.signing import new_secret, payload, sign, verify
from tests.webhooks import receiver
from tests.webhooks.helpers import none_loaded, run_fresh

# The test vector published with Standard Webhooks' reference libraries.
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def headers(message_id: str, timestamp: int, signature: str) -> dict[str, str]:
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }


def test_signatures_match_the_standard_webhooks_test_vector() -> None:
    assert sign(VECTOR_SECRET, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY) == VECTOR_SIGNATURE
    signed = headers(VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_SIGNATURE)
    assert verify(VECTOR_SECRET, signed, VECTOR_BODY, now=VECTOR_TIMESTAMP)


def test_verify_refuses_a_changed_body_id_timestamp_or_secret() -> None:
    now = 1_800_000_000
    secret = new_secret()
    body = b'{"type":"session.revoked"}'
    good = headers("1-0-00", now, sign(secret, "1-0-00", now, body))
    assert verify(secret, good, body, now=now)
    assert not verify(secret, good, body + b" ", now=now)
    assert not verify(secret, {**good, "webhook-id": "1-0-01"}, body, now=now)
    assert not verify(secret, {**good, "webhook-timestamp": str(now + 1)}, body, now=now)
    assert not verify(new_secret(), good, body, now=now)
    # Too old (a replay) or too far ahead.
    assert not verify(secret, good, body, now=now + 301)
    assert not verify(secret, good, body, now=now - 301)
    # Several signatures, space-separated (a rotation): one that matches is enough.
    rotated = {**good, "webhook-signature": f"v1,bm9wZQ== {good['webhook-signature']}"}
    assert verify(secret, rotated, body, now=now)


def test_the_receivers_own_verification_agrees() -> None:
    """tests/webhooks/receiver.py verifies as a receiver would, with nothing of sessionstore."""
    secret = new_secret()
    body = b"{}"
    now = int(datetime.now(UTC).timestamp())
    signed = headers("5-1-zz", now, sign(secret, "5-1-zz", now, body))
    assert receiver.verify(secret, signed, body)
    assert not receiver.verify(new_secret(), signed, body)


def test_secrets_are_whsec_and_32_random_bytes() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
    assert new_secret() != secret


def test_the_body_is_type_timestamp_and_the_event() -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    event = Event("1767323045000-0-3f", "session.revoked", "sess_3f" + "A" * 22, 456, "203.0.113.7",
                  "admin:abc", "bulk", at)  # fmt: skip
    body = json.loads(payload(event))
    assert body == {
        "type": "session.revoked",
        "timestamp": "2026-01-02T03:04:05Z",
        "data": event.to_dict(),
    }
    assert payload(event) == payload(event)  # the same bytes on every attempt


# What a receiver that only verifies signatures must not load.
NOT_FOR_A_RECEIVER = (
    "httpx",
    "sessionstore.webhooks.delivery",
    "sessionstore.webhooks.registry",
    "sessionstore.webhooks.destinations",
)
IMPORT_VERIFY = "import sys\nfrom sessionstore.webhooks.signing import verify\n"

# The package's root as an empty package: its __init__ does not run (signing.py is checked on
# its own, whatever the root may come to import).
BARE_ROOT = """
import importlib.util, sys
spec = importlib.util.find_spec("sessionstore")
sys.modules["sessionstore"] = importlib.util.module_from_spec(spec)
"""


def test_verify_imports_no_http_client_and_no_deliverer() -> None:
    run_fresh(IMPORT_VERIFY + none_loaded(NOT_FOR_A_RECEIVER))


def test_signing_itself_imports_no_redis() -> None:
    """What signing.py and the webhooks package load, apart from the package's root."""
    vector = f"{VECTOR_SECRET!r}, {VECTOR_ID!r}, {VECTOR_TIMESTAMP}, {VECTOR_BODY!r}"
    signs = f"assert sign({vector}) == {VECTOR_SIGNATURE!r}\n"  # and it works
    program = BARE_ROOT + "from sessionstore.webhooks.signing import sign, verify\n" + signs
    run_fresh(program + none_loaded(("redis", *NOT_FOR_A_RECEIVER)))


def test_verify_imports_no_redis() -> None:
    # sessionstore/__init__.py loads each public name on first use, so none of them here.
    run_fresh(IMPORT_VERIFY + none_loaded(("redis",)))
