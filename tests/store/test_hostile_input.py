"""Hostile input through the store's public methods: refused before any Redis command.

Junk tokens are not errors (a request with a bad cookie is simply anonymous): validate answers
None. Junk tenants, user ids, session ids and IPs are caller bugs or attacks: a typed
InvalidArgument. Either way nothing reaches Redis, which a counter on the store's single I/O
entry point (``_run``) proves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessionstore import (
    AsyncSessionStore,
    InvalidIPAddress,
    InvalidSessionId,
    InvalidTenant,
    InvalidUserId,
    SessionStore,
)
from sessionstore._core import inputs, tokens
from tests import backends

TENANT = "acme-corp"
USER = 1234
IP = "203.0.113.45"

SAMPLE_TOKEN = "sst_" + "a" * 2 + "B" * 54  # well formed, never issued
SAMPLE_SESSION_ID = "sess_" + "a" * 2 + "B" * 22
HOSTILE_TOKENS: list[object] = [
    "",
    "sst_",
    "x" * 10_240,
    "sst_" + "a" * 10_240,
    SAMPLE_TOKEN + "\x00",
    SAMPLE_TOKEN[:-1] + "\x00",
    "\x00" * len(SAMPLE_TOKEN),
    "sess_" + SAMPLE_TOKEN[4:],  # a session id's prefix
    "SST_" + SAMPLE_TOKEN[4:],
    "Bearer " + SAMPLE_TOKEN,
    SAMPLE_TOKEN + "\n",
    " " + SAMPLE_TOKEN,
    SAMPLE_TOKEN[:-1],
    SAMPLE_TOKEN + "a",
    "sst_" + "é" * 60,
    SAMPLE_TOKEN[:-3] + "é",
    "sst_" + "٣" * 64,  # Unicode digits: not [0-9]
    "sst_" + "*" * 64,
    "sst_" + "?" * 64,
    SAMPLE_TOKEN[:-3] + "*?[",
    "sst_*",
    "sst_" + "A" * 56,  # upper case in the bucket
    None,
    SAMPLE_TOKEN.encode(),
    bytearray(SAMPLE_TOKEN.encode()),
    12345,
    ["sst_"],
    {"token": SAMPLE_TOKEN},
]
HOSTILE_TENANTS: list[object] = [
    "a*", "a:b", "A", "{x}", "a}", "{", "*", "?", "a[b]", "", "-a", "a b", "a\x00", "a" * 64,
    "acme-corp\n", "é", "../a", "a/b", None, b"acme", 1,
]  # fmt: skip
HOSTILE_USER_IDS: list[object] = [
    "01", "+1", "1e3", "-1", "1", 2**63, -1, True, False, 1.0, None, b"1", "١",
]  # fmt: skip
HOSTILE_SESSION_IDS: list[object] = [
    "", "sess_", "sess_*", "sess_" + "a" * 2 + "?" * 22, SAMPLE_TOKEN, "sess_" + "A" * 24,
    "sess_" + "a" * 24 + "\x00", "sess_" + "a" * 10240, None, b"sess_" + b"a" * 32,
]  # fmt: skip


class CommandCounter:
    """Counts the batches a store sends to Redis, and still sends them."""

    def __init__(self, store: SessionStore | AsyncSessionStore) -> None:
        self.batches = 0
        self._run = store._run

    def sync(self, batch: list[Any]) -> list[Any]:
        self.batches += 1
        return self._run(batch)  # type: ignore[return-value]

    async def async_(self, batch: list[Any]) -> list[Any]:
        self.batches += 1
        return await self._run(batch)  # type: ignore[misc]


@pytest.fixture
def backend() -> str:
    """Refused before any Redis command: which Redis it would have been cannot matter, so these
    run once, on the embedded server (tests that do reach Redis name their backends)."""
    return "fake"


@pytest.fixture
def sent(store: SessionStore, monkeypatch: pytest.MonkeyPatch) -> CommandCounter:
    store._run_flow(store._core.check_layout())  # once per store; not what these tests count
    counter = CommandCounter(store)
    monkeypatch.setattr(store, "_run", counter.sync)
    return counter


@pytest.fixture
def async_sent(astore: AsyncSessionStore, monkeypatch: pytest.MonkeyPatch) -> CommandCounter:
    counter = CommandCounter(astore)
    monkeypatch.setattr(astore, "_run", counter.async_)
    return counter


def every_operation(
    tenant: object = TENANT, user_id: object = USER, session_id: object = SAMPLE_SESSION_ID
) -> list[tuple[str, Callable[[Any], Any]]]:
    """Each public store method, called with the given (possibly hostile) arguments."""
    sid: Any = session_id
    t: Any = tenant
    u: Any = user_id
    return [
        ("create", lambda s: s.create(t, u, ip_address=IP, user_agent="ua")),
        ("validate", lambda s: s.validate(t, SAMPLE_TOKEN)),
        ("get", lambda s: s.get(t, sid)),
        ("list_user_sessions", lambda s: s.list_user_sessions(t, u)),
        ("list_sessions", lambda s: s.list_sessions(t, user_id=u)),
        ("revoke", lambda s: s.revoke(t, u, sid)),
        ("revoke_all", lambda s: s.revoke_all(t, u)),
        ("revoke_all except", lambda s: s.revoke_all(t, u, except_session_id=sid)),
        ("mark_mfa_verified", lambda s: s.mark_mfa_verified(t, sid)),
    ]


# -- tokens ----------------------------------------------------------------------------------


@pytest.mark.parametrize("token", HOSTILE_TOKENS, ids=lambda t: repr(t)[:24])
def test_malformed_tokens_are_invalid_without_a_redis_call(
    store: SessionStore, sent: CommandCounter, token: object
) -> None:
    assert store.validate(TENANT, token) is None
    assert sent.batches == 0


@pytest.mark.parametrize("token", HOSTILE_TOKENS, ids=lambda t: repr(t)[:24])
async def test_async_malformed_tokens_are_invalid_without_a_redis_call(
    astore: AsyncSessionStore, async_sent: CommandCounter, token: object
) -> None:
    assert await astore.validate(TENANT, token) is None
    assert async_sent.batches == 0


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(token=st.one_of(st.text(max_size=200), st.binary(max_size=100), st.from_regex(r"sst_.*")))
def test_fuzzed_tokens_are_invalid_without_a_redis_call(
    store: SessionStore, sent: CommandCounter, token: str | bytes
) -> None:
    before = sent.batches
    assert store.validate(TENANT, token) is None
    assert sent.batches == before or tokens.parse_token(token) is not None


@pytest.mark.parametrize("backend", backends.BACKENDS)
def test_a_well_formed_token_never_issued_is_invalid(
    store: SessionStore, sent: CommandCounter
) -> None:
    assert store.validate(TENANT, SAMPLE_TOKEN) is None
    assert sent.batches == 1  # well formed: it had to be looked up


@pytest.mark.parametrize("backend", backends.BACKENDS)
def test_forged_tokens_are_invalid_and_harmless(store: SessionStore) -> None:
    session, token = store.create(TENANT, USER, ip_address=IP, user_agent="ua")
    other_secret = token[:-32] + ("A" if token[-32] != "A" else "B") + token[-31:]
    other_session = token[:6] + "0" * 22 + token[-32:]
    other_bucket = token[:4] + ("zz" if token[4:6] != "zz" else "yy") + token[6:]
    for forged in (other_secret, other_session, other_bucket):
        assert store.validate(TENANT, forged) is None
    assert store.validate("other-tenant", token) is None
    # The attempts changed nothing: the real token still works.
    validated = store.validate(TENANT, token)
    assert validated is not None and validated.id == session.id


# -- tenants, user ids, session ids ----------------------------------------------------------


@pytest.mark.parametrize("tenant", HOSTILE_TENANTS, ids=repr)
def test_hostile_tenants_are_refused_by_every_operation(
    store: SessionStore, sent: CommandCounter, tenant: object
) -> None:
    for name, operation in every_operation(tenant=tenant):
        with pytest.raises(InvalidTenant):
            operation(store)
        assert sent.batches == 0, name


@pytest.mark.parametrize("user_id", HOSTILE_USER_IDS, ids=repr)
def test_hostile_user_ids_are_refused_by_every_operation(
    store: SessionStore, sent: CommandCounter, user_id: object
) -> None:
    for name, operation in every_operation(user_id=user_id):
        if name in ("validate", "get", "mark_mfa_verified"):
            continue  # these take no user id
        if name == "list_sessions" and user_id is None:
            continue  # there None means "any user"
        with pytest.raises(InvalidUserId):
            operation(store)
        assert sent.batches == 0, name


@pytest.mark.parametrize("session_id", HOSTILE_SESSION_IDS, ids=lambda s: repr(s)[:24])
def test_hostile_session_ids_are_refused_by_every_operation(
    store: SessionStore, sent: CommandCounter, session_id: object
) -> None:
    for name, operation in every_operation(session_id=session_id):
        if name in ("create", "validate", "list_user_sessions", "list_sessions", "revoke_all"):
            continue  # these take no session id
        if name == "revoke_all except" and session_id is None:
            continue  # there None means "keep none"
        with pytest.raises(InvalidSessionId):
            operation(store)
        assert sent.batches == 0, name


@pytest.mark.parametrize("tenant", ["a*", "{x}", "A"], ids=repr)
async def test_async_hostile_tenants_are_refused(
    astore: AsyncSessionStore, async_sent: CommandCounter, tenant: str
) -> None:
    for name, operation in every_operation(tenant=tenant):
        with pytest.raises(InvalidTenant):
            await operation(astore)
        assert async_sent.batches == 0, name


@pytest.mark.parametrize(
    "text", ["01", "+1", "1e3", "-1", " 1", "1 ", "1.0", "", "0x1", "1_000", str(2**63), "١"]
)
def test_user_ids_in_urls_are_canonical_decimals(text: str) -> None:
    with pytest.raises(InvalidUserId):
        inputs.user_id_text(text)


# -- IP addresses ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("::ffff:203.0.113.45", "203.0.113.45"),
        ("::FFFF:203.0.113.45", "203.0.113.45"),
        ("2001:DB8::1", "2001:db8::1"),
        ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("FE80::1", "fe80::1"),
    ],
)
@pytest.mark.parametrize("backend", backends.BACKENDS)
def test_ip_addresses_are_stored_and_searched_canonically(
    store: SessionStore, given: str, stored: str
) -> None:
    session, _ = store.create(TENANT, USER, ip_address=given, user_agent="ua")
    assert session.ip_address == stored
    for spelling in (given, stored):
        found = store.list_sessions(TENANT, ip_address=spelling).data
        assert [s.id for s in found] == [session.id]
        assert found[0].ip_address == stored


@pytest.mark.parametrize(
    "address",
    [
        "fe80::1%eth0", "fe80::1%1", "203.0.113.0/24", "2001:db8::/32", "203.0.113.45/32",
        "010.1.1.1", "127.1", "0x7f.0.0.1", " 203.0.113.45", "203.0.113.45\n", "[::1]",
        "203.0.113.45:80", "*", "", "localhost", None, 2130706433,
    ],
)  # fmt: skip
def test_scoped_cidr_and_odd_addresses_are_refused(
    store: SessionStore, sent: CommandCounter, address: object
) -> None:
    with pytest.raises(InvalidIPAddress):
        store.create(TENANT, USER, ip_address=address, user_agent="ua")  # type: ignore[arg-type]
    if address is not None:  # a None filter means "any address"
        with pytest.raises(InvalidIPAddress):
            store.list_sessions(TENANT, ip_address=address)  # type: ignore[arg-type]
    assert sent.batches == 0
