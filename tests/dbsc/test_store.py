"""The store's side of DBSC on every backend: what binding changes on the hot path (nothing in
round trips), in the near cache and in other processes, and where its state lives.

Proofs come from the spec's client (client.py), never from the store's own code.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sessionstore import AsyncSessionStore, SessionStore, StoreConfig
from sessionstore._core.binding import BindingTerms, CookieCheck, InvalidProof, Outcome
from sessionstore._core.codec import CHUNK
from sessionstore._core.kinds import Reason
from tests import backends
from tests.dbsc.client import proof
from tests.dbsc.conftest import KEYS, TENANT
from tests.store.test_nearcache import round_trips, stop_following, wait_until

TERMS = BindingTerms()


def bound(store: SessionStore, algorithm: str = "ES256") -> tuple[Any, str]:
    session, token = store.create(TENANT, 7, ip_address="203.0.113.9", user_agent="pytest")
    challenge = store.begin_binding(TENANT, token, TERMS)
    assert challenge is not None
    signed = proof(KEYS[algorithm], challenge.value, registration=True)
    assert store.register_binding(TENANT, token, signed, TERMS).outcome is Outcome.PROVEN
    return session, token


@pytest.mark.parametrize("algorithm", ["ES256", "RS256"])
def test_the_key_lives_in_the_sessions_own_hash(
    store: SessionStore, client: Any, backend: str, algorithm: str
) -> None:
    session, _ = bound(store, algorithm)
    key = store._core.keys.session(TENANT, session.id)
    fields = client.hgetall(key)
    assert fields[b"b"] == b"1"
    chunks = sorted(name for name in fields if name.startswith(b"k"))
    assert chunks and all(len(fields[name]) <= CHUNK for name in fields)
    assert all(len(value) <= CHUNK for value in fields.values())  # a listpack still
    stored = b"".join(fields[f"k{index}".encode()] for index in range(len(chunks)))
    assert stored.decode().startswith('{"crv"' if algorithm == "ES256" else '{"e"')
    if backend != "fake":  # the embedded server has no OBJECT ENCODING
        assert client.object("encoding", key) in (b"listpack", "listpack")


def test_validate_says_bound_in_one_round_trip(
    store: SessionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, token = bound(store)
    plain, plain_token = store.create(TENANT, 8, ip_address="203.0.113.9", user_agent="pytest")
    for known in (token, plain_token):
        store.validate(TENANT, known)  # the process remembers their fixed parts
    cookie = store.bound_cookie(TENANT, session.id, 300)  # reads the secret, once
    sent = round_trips(store, monkeypatch)
    assert store.validate(TENANT, plain_token).device_bound is False  # type: ignore[union-attr]
    assert store.validate(TENANT, token).device_bound is True  # type: ignore[union-attr]
    assert store.check_bound_cookie(TENANT, session.id, cookie) is CookieCheck.VALID
    assert sent == [2, 2]  # HMGET of MOVING and ZSCORE, each; the cookie costs nothing


def test_a_session_known_unbound_is_seen_bound(
    store: SessionStore, client: Any, config: StoreConfig, clock: backends.Clock
) -> None:
    other = SessionStore(client, config=config, clock=clock)  # another process
    session, token = store.create(TENANT, 7, ip_address="203.0.113.9", user_agent="pytest")
    assert other.validate(TENANT, token).device_bound is False  # type: ignore[union-attr]
    challenge = store.begin_binding(TENANT, token, TERMS)
    assert challenge is not None
    signed = proof(KEYS["ES256"], challenge.value, registration=True)
    store.register_binding(TENANT, token, signed, TERMS)
    assert other.validate(TENANT, token).device_bound is True  # type: ignore[union-attr]
    assert other.get(TENANT, session.id).device_bound is True  # type: ignore[union-attr]
    (listed,) = other.list_user_sessions(TENANT, 7)
    assert listed.to_dict()["deviceBound"] is True


@pytest.fixture
def cached(client: Any, prefix: str, clock: backends.Clock) -> Iterator[SessionStore]:
    store = SessionStore(
        client, config=StoreConfig(prefix=prefix, near_cache_size=100), clock=clock
    )
    wait_until(lambda: store.near_cache_stats().trusted)
    yield store
    stop_following(store)


def test_the_near_cache_drops_a_session_when_it_is_bound(
    cached: SessionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, token = cached.create(TENANT, 7, ip_address="203.0.113.9", user_agent="pytest")
    assert cached.validate(TENANT, token).device_bound is False  # type: ignore[union-attr]
    challenge = cached.begin_binding(TENANT, token, TERMS)
    assert challenge is not None
    signed = proof(KEYS["ES256"], challenge.value, registration=True)
    cached.register_binding(TENANT, token, signed, TERMS)
    wait_until(lambda: cached.validate(TENANT, token).device_bound)  # type: ignore[union-attr]
    cookie = cached.bound_cookie(TENANT, session.id, 300)
    hits = cached.near_cache_stats().hits
    wait_until(lambda: cached.validate(TENANT, token) and cached.near_cache_stats().hits > hits)
    sent = round_trips(cached, monkeypatch)
    for _ in range(5):  # a hot bound session: validate and its cookie from memory alone
        assert cached.validate(TENANT, token).device_bound is True  # type: ignore[union-attr]
        assert cached.check_bound_cookie(TENANT, session.id, cookie) is CookieCheck.VALID
    assert sent == []


def test_bound_cookies(store: SessionStore, clock: backends.Clock) -> None:
    session, _ = bound(store)
    other, _ = bound(store)
    cookie = store.bound_cookie(TENANT, session.id, 300)
    assert store.check_bound_cookie(TENANT, session.id, cookie) is CookieCheck.VALID
    flipped = cookie[:-1] + ("B" if cookie.endswith("A") else "A")
    for wrong in (None, "", "junk", cookie + "x", flipped, "ff." + cookie.split(".")[1]):
        assert store.check_bound_cookie(TENANT, session.id, wrong) is CookieCheck.MISSING
    assert store.check_bound_cookie(TENANT, other.id, cookie) is CookieCheck.MISSING
    assert store.check_bound_cookie("other-tenant", session.id, cookie) is CookieCheck.MISSING
    clock.advance(301)
    assert store.check_bound_cookie(TENANT, session.id, cookie) is CookieCheck.EXPIRED


def test_the_secret_is_made_once_per_deployment(
    store: SessionStore, client: Any, config: StoreConfig, clock: backends.Clock
) -> None:
    session, _ = bound(store)
    cookie = store.bound_cookie(TENANT, session.id, 300)
    elsewhere = SessionStore(client, config=config, clock=clock)
    assert elsewhere.check_bound_cookie(TENANT, session.id, cookie) is CookieCheck.VALID
    assert cookie not in repr(store) and "secret" not in repr(store._binder)


def test_failures_are_recorded_and_revoke_only_when_asked(store: SessionStore) -> None:
    session, token = bound(store)
    assert store.record_binding_failure(TENANT, token, Reason.BOUND_COOKIE_EXPIRED, TERMS)
    assert store.validate(TENANT, token) is not None
    revoking = BindingTerms(revoke_on_failure=True)
    assert store.record_binding_failure(TENANT, token, Reason.KEY_MISMATCH, revoking)
    assert store.validate(TENANT, token) is None
    assert not store.record_binding_failure(TENANT, token, Reason.KEY_MISMATCH, revoking)
    kinds = [(event.type, event.reason) for event in store.events(TENANT).data]
    assert kinds[-3:] == [
        ("session.binding_failed", "bound_cookie_expired"),
        ("session.binding_failed", "key_mismatch"),
        ("session.revoked", "key_mismatch"),
    ]
    assert store.events(TENANT, types=["session.bound"]).data[0].session_id == session.id


def test_challenges_are_a_few_and_the_soonest_to_expire_goes(store: SessionStore) -> None:
    session, token = bound(store)
    challenge = store.refresh_binding  # an attempt without a proof issues a challenge
    issued = [challenge(TENANT, token, session.id, None, TERMS).challenge for _ in range(6)]

    def refresh(over: str | None) -> Outcome:
        signed = proof(KEYS["ES256"], over or "", registration=False)
        return store.refresh_binding(TENANT, token, session.id, signed, TERMS).outcome

    # Four are kept: the one sent ahead at registration (it lives longest) and the three
    # newest. A proof frees its challenge's place for the next one, so no other is lost.
    assert [refresh(over) for over in reversed(issued)] == [Outcome.PROVEN] * 3 + [
        Outcome.STALE
    ] * 3


def test_a_refresh_of_a_session_never_bound(store: SessionStore) -> None:
    session, token = store.create(TENANT, 7, ip_address="203.0.113.9", user_agent="pytest")
    asked = store.refresh_binding(TENANT, token, session.id, None, TERMS)
    assert asked.outcome is Outcome.UNBOUND
    signed = proof(KEYS["ES256"], "c", registration=False)
    assert (
        store.refresh_binding(TENANT, token, session.id, signed, TERMS).outcome is Outcome.UNBOUND
    )


def test_malformed_proofs_are_typed_errors(store: SessionStore) -> None:
    session, token = bound(store)
    for bad in ("", "x" * 9000, "a.b.c", object()):
        with pytest.raises(InvalidProof):
            store.register_binding(TENANT, token, bad, TERMS)  # type: ignore[arg-type]
        with pytest.raises(InvalidProof):
            store.refresh_binding(TENANT, token, session.id, bad, TERMS)  # type: ignore[arg-type]


async def test_the_async_store_binds_too(astore: AsyncSessionStore) -> None:
    session, token = await astore.create(TENANT, 7, ip_address="203.0.113.9", user_agent="t")
    challenge = await astore.begin_binding(TENANT, token, TERMS)
    assert challenge is not None
    signed = proof(KEYS["RS256"], challenge.value, registration=True)
    attempt = await astore.register_binding(TENANT, token, signed, TERMS)
    assert attempt.outcome is Outcome.PROVEN and attempt.challenge
    again = proof(KEYS["RS256"], attempt.challenge, registration=False)
    proven = await astore.refresh_binding(TENANT, token, session.id, again, TERMS)
    assert proven.outcome is Outcome.PROVEN
    cookie = await astore.bound_cookie(TENANT, session.id, 60)
    assert await astore.check_bound_cookie(TENANT, session.id, cookie) is CookieCheck.VALID
