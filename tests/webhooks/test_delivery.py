"""Delivery over real HTTP to a receiver on loopback: order, signatures, filters, retries,
redirects, refused destinations, removal, late events and giving up after 24 hours.

Every backend. Retries are a fraction of a second apart (helpers.FAST); the 24 hours are reached by
moving the deliverer's clock, never by waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import ssl
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sessionstore import AsyncSessionStore
from sessionstore.webhooks.delivery import GIVE_UP_AFTER, Backoff
from sessionstore.webhooks.registry import Webhooks
from tests import backends
from tests.webhooks.conftest import DelivererFactory
from tests.webhooks.helpers import (
    OTHER,
    SHORT,
    TENANT,
    every_event_id,
    recorded,
    register,
    session_events,
    wait_until,
)
from tests.webhooks.receiver import Answer, Receiver, Request


async def test_every_event_is_delivered_in_order_and_signed(
    astore: AsyncSessionStore,
    clock: backends.Clock,
    hooks: Webhooks,
    receiver: Receiver,
    deliverers: DelivererFactory,
) -> None:
    webhook = await register(hooks, receiver)
    ids = await session_events(astore, clock, 4)
    deliverer = deliverers()

    assert await deliverer.run_once() == len(ids) == 8
    requests = receiver.attempts("/hook")
    assert [request.webhook_id for request in requests] == ids
    for request in requests:
        assert request.verified is True
        assert request.method == "POST"
        assert request.headers["content-type"] == "application/json"
        body = json.loads(request.body)
        assert set(body) == {"type", "timestamp", "data"}
        assert body["data"]["id"] == request.webhook_id
        assert body["type"] == body["data"]["type"]
        assert body["timestamp"] == body["data"]["at"]
    kinds = Counter(json.loads(request.body)["type"] for request in requests)
    assert kinds == {"session.created": 4, "session.revoked": 4}

    log = await hooks.log(TENANT, webhook.id)
    assert log is not None
    assert [(a.event_id, a.outcome, a.status, a.error) for a in log] == [
        (event_id, "delivered", 200, None) for event_id in reversed(ids)
    ]
    assert [a.event_id for a in await hooks.log(TENANT, webhook.id, limit=3) or []] == ids[:-4:-1]
    after = await hooks.get(TENANT, webhook.id)
    assert after is not None and after.cursor == ids[-1] and after.failing_since is None

    assert await deliverer.run_once() == 0  # nothing twice
    more = await session_events(astore, clock, 1, first_user=10)
    assert await deliverer.run_once() == 2
    assert [r.webhook_id for r in receiver.attempts("/hook")] == ids + more


async def test_only_events_after_registration_are_delivered(
    astore: AsyncSessionStore,
    clock: backends.Clock,
    hooks: Webhooks,
    receiver: Receiver,
    deliverers: DelivererFactory,
) -> None:
    before = await session_events(astore, clock, 2)
    await register(hooks, receiver)
    every = await session_events(astore, clock, 2, first_user=10)
    assert await deliverers().run_once() == 4
    assert receiver.delivered("/hook") == every
    assert not set(before) & set(every)


async def test_types_filter_what_an_endpoint_receives(
    astore: AsyncSessionStore,
    clock: backends.Clock,
    hooks: Webhooks,
    receiver: Receiver,
    deliverers: DelivererFactory,
) -> None:
    revoked = await register(hooks, receiver, "/revoked", types=["session.revoked"])
    await register(hooks, receiver, "/all")
    await session_events(astore, clock, 3)
    await astore.create(TENANT, 99, ip_address="203.0.113.9", user_agent="pytest")
    ids = await every_event_id(astore)

    assert await deliverers().run_once() == 3 + len(ids)
    got = [json.loads(r.body)["type"] for r in receiver.attempts("/revoked")]
    assert got == ["session.revoked"] * 3
    assert receiver.delivered("/all") == ids
    # The cursor passes the events it does not take, up to the newest.
    after = await hooks.get(TENANT, revoked.id)
    assert after is not None and after.cursor == ids[-1]


async def test_tenants_receive_only_their_own_events(
    astore: AsyncSessionStore,
    clock: backends.Clock,
    hooks: Webhooks,
    receiver: Receiver,
    deliverers: DelivererFactory,
) -> None:
    await register(hooks, receiver, "/acme")
    await register(hooks, receiver, "/globex", tenant=OTHER)
    acme = await session_events(astore, clock, 2)
    globex = await session_events(astore, clock, 1, tenant=OTHER)
    await deliverers().run_once()
    assert receiver.delivered("/acme") == acme
    assert receiver.delivered("/globex") == globex


async def test_retries_after_500_and_a_timeout_carry_the_same_id(
    astore: AsyncSessionStore,
    clock: backends.Clock,
    hooks: Webhooks,
    receiver: Receiver,
    deliverers: DelivererFactory,
) -> None:
    """Each event: 500, then no answer (the attempt times out), then 200."""
    seen: Counter[str] = Counter()

    async def script(request: Request) -> Answer:
        seen[request.webhook_id] += 1
        return {1: Answer(500), 2: Answer(hang=True)}.get(seen[request.webhook_id], Answer())

    receiver.script = script
    webhook = await register(hooks, receiver)
    ids = await session_events(astore, clock, 2)  # four events, each waited out once
    async with deliverers(**SHORT).running():
        await wait_until(lambda: receiver.delivered("/hook") == ids, "every event delivered")
        await recorded(hooks, webhook.id, ids[-1])

    requests = receiver.attempts("/hook")
    # Nothing later is sent before an earlier event is delivered: the tries of each, in turn
    # (three, or more should a busy machine make an answer late).
    sent = [r.webhook_id for r in requests]
    assert sent == sorted(sent, key=ids.index)
    assert all(sent.count(event_id) >= 3 for event_id in ids)
    assert all(request.verified for request in requests)
    log = await hooks.log(TENANT, webhook.id)
    assert log is not None
    for event_id in ids:
        tries = [a for a in reversed(log) if a.event_id == event_id]
        assert [(a.outcome, a.status) for a in tries[:2] + tries[-1:]] == [
            ("failed", 500),
            ("failed", None),
            ("delivered", 200),
        ]
        assert tries[0].error == "HTTP 500"
        assert tries[1].error == f"no answer within {SHORT['timeout']:g} s"
    after = await hooks.get(TENANT, webhook.id)
    assert after is not None and after.failing_since is None and after.attempts == 0


async def test_redirects_are_not_followed(
    astore: AsyncSessionStore,
    clock: backends.Clock,
    hooks: Webhooks,
    receiver: Receiver,
    deliverers: DelivererFactory,
) -> None:
    async def script(request: Request) -> Answer:
        if request.path == "/hook":
            return Answer(307, {"Location": receiver.url + "/elsewhere"})
        return Answer()

    receiver.script = script
    webhook = await register(hooks, receiver)
    ids = await session_events(astore, clock, 1)
    deliverer = deliverers(backoff=Backoff(first=3600))

    assert await deliverer.run_once() == 1
    assert [r.path for r in receiver.requests] == ["/hook"]  # never /elsewhere
    log = await hooks.log(TENANT, webhook.id)
    assert log is not None
    assert [(a.event_id, a.outcome, a.status, a.error) for a in log] == [
        (ids[0], "failed", 307, "HTTP 307 (redirects are not followed)")
    ]
    after = await hooks.get(TENANT, webhook.id)
    assert after is not None
    assert after.cursor == webhook.cursor and after.failing_since is not None
    assert after.next_attempt_at is not None
    assert await deliverer.run_once() == 0  # the retry is an hour away


async def test_private_destinations_are_refused_when_delivering(
    astore: AsyncSessionStore,
    clock: backends.Clock,
    hooks: Webhooks,
    receiver: Receiver,
    deliverers: DelivererFactory,
) -> None:
    """Registered where the operator allowed it; a deliverer without the allowance refuses."""
    webhook = await register(hooks, receiver)
    await session_events(astore, clock, 1)
    assert await deliverers(allow_private=False).run_once() == 1
    assert receiver.requests == []
    log = await hooks.log(TENANT, webhook.id)
    assert log is not None and log[0].outcome == "failed" and log[0].status is None
    assert log[0].error == "destination refused"


@pytest.mark.parametrize(
    ("addresses", "refused", "options"),
    [
        (["93.184.215.14", "10.0.0.7"], "10.0.0.7, a private or reserved address", {}),
        (["169.254.169.254"], "169.254.169.254, a link-local address", {}),
        (["2606:2800:220:1::", "::1"], "::1, a loopback address", {}),
        (["64:ff9b::a9fe:a9fe"], "64:ff9b::a9fe:a9fe, a link-local address", {}),
        # The metadata range stays refused where private destinations are allowed.
        (["169.254.169.254"], "--allow-metadata-destinations", {"allow_private": True}),
        (["2002:a9fe:a9fe::1"], "--allow-metadata-destinations", {"allow_private": True}),
    ],
)
async def test_every_resolved_address_is_checked(
    astore: AsyncSessionStore,
    clock: backends.Clock,
    hooks: Webhooks,
    deliverers: DelivererFactory,
    caplog: pytest.LogCaptureFixture,
    addresses: list[str],
    refused: str,
    options: dict[str, Any],
) -> None:
    """A name is no loophole: one private address among its addresses refuses it. The
    server's log says which; the tenant's log only that it was refused."""
    asked: list[tuple[str, int]] = []

    async def resolver(host: str, port: int) -> list[str]:
        asked.append((host, port))
        return addresses

    webhook, _ = await Webhooks(astore).add(TENANT, "https://hooks.test/sessions")
    await session_events(astore, clock, 1)
    deliverer = deliverers(**{"allow_private": False, **options}, resolver=resolver)
    with caplog.at_level(logging.WARNING, logger="sessionstore.webhooks"):
        assert await deliverer.run_once() == 1
    assert asked == [("hooks.test", 443)]
    log = await hooks.log(TENANT, webhook.id)
    assert log is not None and log[0].error == "destination refused"
    assert refused in caplog.text


async def test_the_tenants_log_never_says_what_a_name_resolves_to(
    astore: AsyncSessionStore,
    clock: backends.Clock,
    hooks: Webhooks,
    deliverers: DelivererFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """db.corp.internal resolves to 10.9.8.7: the tenant learns "destination refused", the
    server's log the detail (never the URL's path or query, which may hold a token)."""

    async def resolver(host: str, port: int) -> list[str]:
        if host == "db.corp.internal":
            return ["10.9.8.7"]
        raise OSError(f"[Errno -2] Name or service not known: {host} (via 10.1.1.53)")

    internal, _ = await Webhooks(astore).add(TENANT, "https://db.corp.internal/h/tok3n?k=s3cr3t")
    unknown, _ = await Webhooks(astore).add(TENANT, "https://nowhere.corp.internal/")
    await session_events(astore, clock, 1)
    with caplog.at_level(logging.WARNING, logger="sessionstore.webhooks"):
        assert await deliverers(allow_private=False, resolver=resolver).run_once() == 2

    seen = []
    for webhook in (internal, unknown):
        log = await hooks.log(TENANT, webhook.id)
        state = await hooks.get(TENANT, webhook.id)
        assert log is not None and state is not None
        seen.append([attempt.to_dict() for attempt in log] + [state.to_dict()])
    internal_log, unknown_log = seen
    assert [(a["outcome"], a["error"]) for a in internal_log[:-1]] == [
        ("failed", "destination refused")
    ]
    assert [(a["outcome"], a["error"]) for a in unknown_log[:-1]] == [("failed", "cannot resolve")]
    assert "10.9.8.7" not in json.dumps(seen) and "10.1.1.53" not in json.dumps(seen)
    # The server's log has the detail, at warning.
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("db.corp.internal" in m and "10.9.8.7" in m for m in warnings), warnings
    assert any("nowhere.corp.internal" in m and "10.1.1.53" in m for m in warnings), warnings
    assert "tok3n" not in caplog.text and "s3cr3t" not in caplog.text


async def test_a_refused_connection_does_not_tell_the_address(
    astore: AsyncSessionStore,
    clock: backends.Clock,
    hooks: Webhooks,
    receiver: Receiver,
    deliverers: DelivererFactory,
) -> None:
    """A connection error names no address in the tenant's log, even where private
    destinations are allowed (an internal name could otherwise be mapped by its errors)."""

    async def resolver(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    await receiver.close()  # nothing listens there any more: the connection is refused
    webhook, _ = await hooks.add(TENANT, f"http://db.corp.internal:{receiver.port}/")
    await session_events(astore, clock, 1)
    assert await deliverers(resolver=resolver).run_once() == 1
    log = await hooks.log(TENANT, webhook.id)
    assert log is not None and log[0].outcome == "failed"
    assert "127.0.0.1" not in (log[0].error or "") and str(receiver.port) not in (
        log[0].error or ""
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://1.2.3.999/",  # neither a name nor an address
        "http://0177.0.0.1/",  # loopback, in octal
        "http://2130706433/",  # loopback, as one number
        "gopher://hooks.test/",
        "not a url",
    ],
)
async def test_a_bad_stored_url_is_a_failed_attempt_with_backoff(
    astore: AsyncSessionStore,
    clock: backends.Clock,
    hooks: Webhooks,
    deliverers: DelivererFactory,
    client: Any,
    prefix: str,
    caplog: pytest.LogCaptureFixture,
    url: str,
) -> None:
    """A record registered before registration knew better (written here straight into
    Redis) fails its attempts, logged and retried later, and never stops its worker."""
    webhook, _ = await Webhooks(astore).add(TENANT, "https://hooks.test/")
    client.hset(f"{prefix}:{{{TENANT}}}:webhook:{webhook.id}", "url", url)
    await session_events(astore, clock, 1)
    deliverer = deliverers(allow_private=False, backoff=Backoff(first=3600))

    assert await deliverer.run_once() == 1
    log = await hooks.log(TENANT, webhook.id)
    assert log is not None
    assert [(a.outcome, a.status, a.error) for a in log] == [
        ("failed", None, "destination refused")
    ]
    state = await hooks.get(TENANT, webhook.id)
    assert state is not None and state.attempts == 1 and state.next_attempt_at is not None
    # Running: the retry is an hour away, so nothing is tried, and nothing fails.
    with caplog.at_level(logging.INFO, logger="sessionstore.webhooks"):
        async with deliverer.running():
            await asyncio.sleep(0.2)  # several polls (helpers.FAST): none may crash
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(await hooks.log(TENANT, webhook.id) or []) == 1


async def test_a_corrupt_record_pauses_its_endpoint_not_the_deliverer(
    astore: AsyncSessionStore,
    clock: backends.Clock,
    hooks: Webhooks,
    receiver: Receiver,
    deliverers: DelivererFactory,
    client: Any,
    prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A record no code can read (not an attempt's failure): its endpoint waits, backing off,
    with one warning; the deliverer and the other endpoints go on."""
    broken = await register(hooks, receiver, "/broken")
    await register(hooks, receiver, "/fine")
    client.hset(f"{prefix}:{{{TENANT}}}:webhook:{broken.id}", "attempts", "many")
    ids = await session_events(astore, clock, 1)
    deliverer = deliverers(backoff=Backoff(first=3600))
    assert await deliverer.run_once() == len(ids)  # /fine's; /broken's turn ended at once
    with caplog.at_level(logging.INFO, logger="sessionstore.webhooks"):
        async with deliverer.running():
            await asyncio.sleep(0.2)  # several polls (helpers.FAST)
    assert receiver.delivered("/fine") == ids and receiver.attempts("/broken") == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    stopped = [r for r in caplog.records if "delivery stopped by an error" in r.getMessage()]
    assert len(stopped) == 1  # then it waits an hour


async def test_any_error_in_an_attempt_is_a_failed_attempt(
    astore: AsyncSessionStore,
    clock: backends.Clock,
    hooks: Webhooks,
    deliverers: DelivererFactory,
) -> None:
    """Even an error nobody foresaw (here the resolver's) is a failed attempt, with backoff."""

    async def resolver(host: str, port: int) -> list[str]:
        raise RuntimeError("a bug")

    webhook, _ = await hooks.add(TENANT, "https://hooks.test/")
    await session_events(astore, clock, 1)
    deliverer = deliverers(resolver=resolver, backoff=Backoff(first=3600))
    assert await deliverer.run_once() == 1
    log = await hooks.log(TENANT, webhook.id)
    assert log is not None and [(a.outcome, a.error) for a in log] == [("failed", "cannot resolve")]
    assert await deliverer.run_once() == 0  # backed off


def test_backoff_doubles_up_to_its_cap() -> None:
    backoff = Backoff()
    delays = [backoff.delay(n) for n in range(1, 14)]
    assert delays[:4] == [5, 10, 20, 40]
    assert max(delays) == 3600 and delays[-1] == 3600
    assert delays == sorted(delays)
    assert Backoff().delay(10_000) == 3600  # no overflow however long it fails


async def test_the_checked_address_is_the_one_connected_to(
    astore: AsyncSessionStore,
    clock: backends.Clock,
    hooks: Webhooks,
    receiver: Receiver,
    deliverers: DelivererFactory,
) -> None:
    """``hooks.test`` resolves nowhere but through the deliverer's resolver: the request can
    only have reached the address that was checked, with the name kept for Host."""

    async def resolver(host: str, port: int) -> list[str]:
        return ["127.0.0.1"] if host == "hooks.test" else []

    webhook, secret = await hooks.add(TENANT, f"http://hooks.test:{receiver.port}/hook")
    receiver.secrets["/hook"] = secret
    ids = await session_events(astore, clock, 1)
    assert await deliverers(resolver=resolver).run_once() == 2
    assert receiver.delivered("/hook") == ids
    assert {r.headers["host"] for r in receiver.requests} == {f"hooks.test:{receiver.port}"}
    assert all(request.verified for request in receiver.requests)
    assert webhook.id


async def test_an_unresolvable_host_is_a_failed_attempt(
    astore: AsyncSessionStore, clock: backends.Clock, hooks: Webhooks, deliverers: DelivererFactory
) -> None:
    async def resolver(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    webhook, _ = await hooks.add(TENANT, "https://nowhere.test/")
    await session_events(astore, clock, 1)
    assert await deliverers(resolver=resolver).run_once() == 1
    log = await hooks.log(TENANT, webhook.id)
    assert log is not None and log[0].error == "cannot resolve"


async def test_a_webhook_removed_mid_delivery_leaves_nothing_behind(
    astore: AsyncSessionStore,
    clock: backends.Clock,
    hooks: Webhooks,
    receiver: Receiver,
    deliverers: DelivererFactory,
    client: Any,
    prefix: str,
) -> None:
    hold = asyncio.Event()

    async def script(request: Request) -> Answer:
        return Answer(hold=hold)

    receiver.script = script
    webhook = await register(hooks, receiver)
    await session_events(astore, clock, 3)
    async with deliverers().running():
        await wait_until(lambda: len(receiver.requests) == 1, "a delivery in flight")
        assert await hooks.remove(TENANT, webhook.id)
        hold.set()
        await wait_until(lambda: not receiver.in_flight.get("/hook"), "the answer")
        await asyncio.sleep(0.2)  # a few polls: nothing more goes out
    assert len(receiver.requests) == 1
    left = [key.decode() for key in backends.keys_of(client, prefix) if b":webhook" in key]
    assert left == []


async def test_recent_events_wait_to_settle(
    astore: AsyncSessionStore,
    hooks: Webhooks,
    receiver: Receiver,
    deliverers: DelivererFactory,
    clock: backends.Clock,
) -> None:
    """An event is sent once it is ``settle`` seconds old by the deliverer's clock: an event
    written by a slightly slower clock elsewhere can still be stored before it."""
    await register(hooks, receiver)
    ids = await session_events(astore, clock, 1)
    deliverer = deliverers(clock=clock, settle=2.0)  # the store's clock: the events are "now"
    assert await deliverer.run_once() == 0
    clock.advance(1.5)
    assert await deliverer.run_once() == 0
    clock.advance(1.0)
    assert await deliverer.run_once() == 2
    assert receiver.delivered("/hook") == ids


async def test_an_endpoint_failing_for_24_hours_is_disabled(
    astore: AsyncSessionStore,
    hooks: Webhooks,
    receiver: Receiver,
    deliverers: DelivererFactory,
    clock: backends.Clock,
) -> None:
    """Always 500: retried with backoff (5 s doubling to 1 h), by a clock the test moves to
    each retry; disabled at the first failure 24 hours after the first, and logged."""

    async def script(request: Request) -> Answer:
        return Answer(500)

    receiver.script = script
    webhook = await register(hooks, receiver)
    ids = await session_events(astore, clock, 2)
    deliverer = deliverers(clock=clock, backoff=Backoff())
    started = clock.now
    made = []
    while True:
        made.append(await deliverer.run_once())
        state = await hooks.get(TENANT, webhook.id)
        assert state is not None
        if state.state == "disabled":
            break
        assert clock.now - started < GIVE_UP_AFTER.total_seconds()
        assert state.next_attempt_at is not None
        assert state.failing_since is not None  # since the first failure, never reset
        assert abs(state.failing_since.timestamp() - started) < 0.001
        clock.now = state.next_attempt_at.timestamp()  # straight to the retry
    assert clock.now - started >= GIVE_UP_AFTER.total_seconds()

    # The schedule: 5, 10, 20 ... s, then hourly, until a failure 24 hours after the first.
    expected, at, failures = 1, 0.0, 1
    while at < GIVE_UP_AFTER.total_seconds():
        at += Backoff().delay(failures)
        failures += 1
        expected += 1
    assert made == [1] * expected
    assert {r.webhook_id for r in receiver.requests} == {ids[0]}  # nothing after it was sent

    assert state.disabled_at is not None and state.disabled_reason is not None
    assert "for more than 24 hours; last: HTTP 500" in state.disabled_reason
    log = await hooks.log(TENANT, webhook.id)
    assert log is not None
    assert (log[0].outcome, log[0].event_id, log[0].error) == (
        "disabled",
        ids[0],
        state.disabled_reason,
    )
    assert [(a.outcome, a.status) for a in log[1:]] == [("failed", 500)] * expected

    clock.advance(7 * 86400)
    assert await deliverer.run_once() == 0  # disabled: never tried again
    assert [w.state for w in await hooks.list(TENANT)] == ["disabled"]


HOST = "127.0.0.1"


def _self_signed(directory: Path) -> ssl.SSLContext:
    """A server context whose certificate (for selfsigned.test and 127.0.0.1) no CA signed."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "selfsigned.test")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("selfsigned.test"), x509.IPAddress(ipaddress.ip_address(HOST))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context


@pytest.mark.parametrize("backend", backends.ONE_BACKEND, indirect=True)
async def test_an_endpoint_whose_certificate_no_ca_signed_is_never_sent_an_event(
    astore: AsyncSessionStore,
    clock: backends.Clock,
    hooks: Webhooks,
    deliverers: DelivererFactory,
    tmp_path: Path,
) -> None:
    """Every turn verifies the endpoint's certificate, the first and those after it (they share
    the process's one TLS context): a self-signed one fails each attempt in the handshake,
    before a byte of the event is sent."""
    requests: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            requests.append(await reader.readuntil(b"\r\n\r\n"))
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, HOST, 0, ssl=_self_signed(tmp_path))
    port = server.sockets[0].getsockname()[1]

    async def resolver(host: str, port: int) -> list[str]:
        return [HOST]

    try:
        webhook, _ = await hooks.add(TENANT, f"https://selfsigned.test:{port}/h")
        await session_events(astore, clock, 1)
        deliverer = deliverers(clock=clock, resolver=resolver, backoff=Backoff(first=1, cap=1))
        for _ in range(2):  # two turns, each with a client of its own
            assert await deliverer.run_once() == 1
            clock.advance(2)
    finally:
        server.close()
        await server.wait_closed()
    log = await hooks.log(TENANT, webhook.id)
    assert log is not None
    assert [(a.outcome, a.error) for a in log] == [
        ("failed", "cannot connect: TLS CERTIFICATE_VERIFY_FAILED")
    ] * 2
    assert requests == []
