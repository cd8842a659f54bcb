"""Signatures, payloads, secrets, destinations and backoff: no Redis, no network."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest

from sessionstore.errors import InvalidArgument
from sessionstore.events import Event
from sessionstore.webhooks import (
    Backoff,
    DestinationRefused,
    check_url,
    new_secret,
    payload,
    refusal,
    sign,
    verify,
)
from tests.webhooks import receiver

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


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("169.254.169.254", "link-local"),  # cloud metadata
        ("fe80::1", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("10.0.0.1", "private or reserved"),
        ("172.16.5.4", "private or reserved"),
        ("192.168.1.1", "private or reserved"),
        ("100.64.0.1", "private or reserved"),  # carrier-grade NAT
        ("0.0.0.0", "private or reserved"),
        ("fc00::1", "private or reserved"),
        ("::ffff:10.0.0.1", "private or reserved"),  # IPv4-mapped
        ("::ffff:127.0.0.1", "loopback"),
        ("224.0.0.1", "private or reserved"),
        ("8.8.8.8", None),
        ("2001:4860:4860::8888", None),
    ],
)
def test_destinations_refused_without_the_allowance(address: str, why: str | None) -> None:
    assert refusal(address) == why


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/sessions",
        "http://hooks.example.com:8080/a/b?c=d&e=%20",
        "https://8.8.8.8/x",
        "https://example.com",
        "https://example.com?x=1",
    ],
)
def test_urls_registration_accepts(url: str) -> None:
    assert check_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/",
        "https://user:pw@example.com/",
        "https://example.com/#fragment",
        "https://[2001:db8::1]/",
        "https://example.com:0/",
        "https://example.com:65536/",
        "https://exa mple.com/",
        "https://example.com/ space",
        "//example.com/",
        "https://-example.com/",
        "https://example.com/" + "a" * 2048,
        "",
        None,
        42,
    ],
)
def test_urls_registration_refuses(url: object) -> None:
    with pytest.raises(InvalidArgument, match="url must be"):
        check_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://LOCALHOST:9/",
        "http://api.localhost/",
        "http://10.1.2.3/",
        "http://169.254.169.254/latest/meta-data/",
        "http://192.168.0.10/",
    ],
)
def test_literal_private_destinations_are_refused_at_registration(url: str) -> None:
    with pytest.raises(DestinationRefused):
        check_url(url)
    assert check_url(url, allow_private=True) == url


def test_backoff_doubles_up_to_its_cap() -> None:
    backoff = Backoff()
    delays = [backoff.delay(n) for n in range(1, 14)]
    assert delays[:4] == [5, 10, 20, 40]
    assert max(delays) == 3600 and delays[-1] == 3600
    assert delays == sorted(delays)
    assert Backoff().delay(10_000) == 3600  # no overflow however long it fails
