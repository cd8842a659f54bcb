"""SessionStore, end to end on every backend: what an auth service can rely on."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from sessionstore import (
    InvalidAuthMethod,
    InvalidCursor,
    InvalidIPAddress,
    InvalidSessionId,
    InvalidTenant,
    InvalidUserId,
    SessionStore,
    StoreConfig,
    _connection,
)
from sessionstore._core.keys import random_part
from tests import backends

CHROME_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
)
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
)
TENANT = "acme-corp"


def login(store: SessionStore, user_id: int = 456, **overrides: Any) -> tuple[Any, str]:
    options: dict[str, Any] = {
        "ip_address": "203.0.113.45",
        "user_agent": CHROME_MAC,
        "auth_method": "password",
        "mfa_verified": True,
    }
    options.update(overrides)
    tenant = options.pop("tenant", TENANT)
    return store.create(tenant, user_id, **options)


class TestCreate:
    def test_returns_the_spec_object_and_a_token(self, store: SessionStore) -> None:
        session, token = login(store)
        body = session.to_dict()
        assert list(body) == [
            "id", "userId", "ipAddress", "userAgent", "device", "location",
            "authMethod", "mfaVerified", "createdAt", "lastActiveAt", "expiresAt",
            "deviceBound",  # sessionstore's extension (DBSC), after the spec's fields
        ]  # fmt: skip
        assert body["deviceBound"] is False
        assert body["userId"] == 456
        assert body["device"] == {"type": "desktop", "os": "macOS", "browser": "Chrome"}
        assert body["location"] is None
        assert body["createdAt"].endswith("Z")
        assert session.expires_at - session.created_at == timedelta(hours=24)
        assert session.id.startswith("sess_") and token.startswith("sst_")

    def test_token_is_not_the_id_and_hides_the_user(self, store: SessionStore) -> None:
        session, token = login(store, user_id=987654321)
        assert session.id not in token or token != session.id
        assert "987654321" not in token and "987654321" not in session.id

    def test_ids_and_tokens_are_unique(self, store: SessionStore) -> None:
        drawn = [login(store, user_id=i % 3) for i in range(30)]
        assert len({s.id for s, _ in drawn}) == 30
        assert len({t for _, t in drawn}) == 30

    def test_redis_never_holds_the_token_or_its_secret(
        self, store: SessionStore, client: Any, prefix: str
    ) -> None:
        _, token = login(store)
        secret = token[-32:].encode()
        for key in backends.keys_of(client, prefix):
            assert secret not in key
            kind = client.type(key)
            if kind == b"hash":
                dumped = b"".join(b"".join(pair) for pair in client.hgetall(key).items())
            elif kind == b"zset":
                dumped = b"".join(
                    member for member, _ in client.zrange(key, 0, -1, withscores=True)
                )
            else:
                dumped = client.get(key) or b""
            assert secret not in dumped and token.encode() not in dumped

    def test_normalises_the_ip_address(self, store: SessionStore) -> None:
        session, _ = login(store, ip_address="::ffff:198.51.100.7")
        assert session.ip_address == "198.51.100.7"

    @pytest.mark.parametrize(
        ("field", "value", "error"),
        [
            ("tenant", "Acme", InvalidTenant),
            ("tenant", "acme:corp", InvalidTenant),
            ("tenant", "{acme}", InvalidTenant),
            ("user_id", -1, InvalidUserId),
            ("user_id", "456", InvalidUserId),
            ("user_id", True, InvalidUserId),
            ("user_id", 2**63, InvalidUserId),
            ("ip_address", "300.1.1.1", InvalidIPAddress),
            ("ip_address", "fe80::1%eth0", InvalidIPAddress),
            ("auth_method", "magic-link", InvalidAuthMethod),
        ],
    )
    def test_rejects_bad_arguments_with_typed_errors(
        self, store: SessionStore, field: str, value: Any, error: type[Exception]
    ) -> None:
        arguments: dict[str, Any] = {
            "tenant": TENANT,
            "user_id": 1,
            "ip_address": "203.0.113.45",
            "user_agent": CHROME_MAC,
            "auth_method": "password",
        }
        arguments[field] = value
        with pytest.raises(error):
            store.create(arguments.pop("tenant"), arguments.pop("user_id"), **arguments)
        with pytest.raises(ValueError):
            store.create(TENANT, 1, ip_address="x", user_agent="")

    def test_long_user_agents_round_trip(self, store: SessionStore) -> None:
        agent = "Mozilla/5.0 " + "é" * 300
        session, token = login(store, user_agent=agent)
        stored = store.validate(TENANT, token)
        assert stored is not None
        assert stored.user_agent == session.user_agent
        assert agent.startswith(stored.user_agent) and len(stored.user_agent.encode()) <= 1024


class TestValidate:
    def test_a_fresh_token_validates(self, store: SessionStore) -> None:
        session, token = login(store)
        assert store.validate(TENANT, token) == session

    @pytest.mark.parametrize(
        "token", ["", "sst_", "sess_abc", "x" * 10_000, "sst_" + "0" * 64, None, 42, b"sst_"]
    )
    def test_malformed_or_unknown_tokens_are_none(self, store: SessionStore, token: Any) -> None:
        login(store)
        assert store.validate(TENANT, token) is None

    def test_a_token_with_a_wrong_secret_is_none(self, store: SessionStore) -> None:
        session, token = login(store)
        forged = token[:-1] + ("A" if token[-1] != "A" else "B")
        assert store.validate(TENANT, forged) is None
        assert store.validate(TENANT, token) == session  # the forgery did not harm the session

    def test_a_token_only_works_in_its_tenant(self, store: SessionStore) -> None:
        _, token = login(store)
        assert store.validate("other-corp", token) is None

    def test_activity_is_recorded_at_most_once_per_interval(
        self, store: SessionStore, clock: backends.Clock
    ) -> None:
        session, token = login(store)
        clock.advance(30)
        assert store.validate(TENANT, token).last_active_at == session.last_active_at
        clock.advance(31)
        touched = store.validate(TENANT, token)
        assert touched.last_active_at > session.last_active_at
        assert touched.expires_at == session.expires_at  # no idle timeout: absolute only

    def test_expires_at_its_absolute_lifetime(
        self, store: SessionStore, clock: backends.Clock
    ) -> None:
        _, token = login(store)
        clock.advance(24 * 3600 - 1)
        assert store.validate(TENANT, token) is not None
        clock.advance(2)
        assert store.validate(TENANT, token) is None

    def test_one_round_trip_and_a_script_only_when_needed(
        self,
        client: Any,
        config: StoreConfig,
        clock: backends.Clock,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        _, token = login(SessionStore(client, config=config, clock=clock))
        store = SessionStore(client, config=config, clock=clock)  # another process
        store.validate(TENANT, "sst_" + "a" * 2 + "B" * 54)  # its layout check, once
        calls = count_calls(store, monkeypatch)
        assert store.validate(TENANT, token) is not None
        assert calls == ["pipeline"]  # first seen here: its hash and its user index entry
        calls.clear()
        assert store.validate(TENANT, token) is not None
        assert calls == ["pipeline"]  # then two plain reads in one round trip
        calls.clear()
        clock.advance(config.touch_interval.total_seconds())
        assert store.validate(TENANT, token) is not None
        assert calls[-1] == "evalsha" and "pipeline" not in calls  # a touch is due: the script
        calls.clear()
        assert store.validate(TENANT, token[:-1] + ("A" if token[-1] != "A" else "B")) is None
        assert calls == []  # a known session's secret never changes: no need to ask

    def test_what_a_process_remembers_never_lets_an_ended_session_pass(
        self, client: Any, config: StoreConfig, clock: backends.Clock
    ) -> None:
        elsewhere = SessionStore(client, config=config, clock=clock)
        here = SessionStore(client, config=config, clock=clock)
        sessions = [login(elsewhere) for _ in range(3)]
        assert all(here.validate(TENANT, token) for _, token in sessions)  # all remembered
        revoked, evicted_by_all, expiring = sessions
        assert elsewhere.revoke(TENANT, 456, revoked[0].id)
        assert here.validate(TENANT, revoked[1]) is None
        assert elsewhere.mark_mfa_verified(TENANT, expiring[0].id)
        assert here.validate(TENANT, expiring[1]).mfa_verified  # changes are read every time
        assert elsewhere.revoke_all(TENANT, 456, except_session_id=expiring[0].id) == 1
        assert here.validate(TENANT, evicted_by_all[1]) is None
        clock.advance(24 * 3600)
        assert here.validate(TENANT, expiring[1]) is None
        assert here.list_sessions(TENANT).total_count == 0

    def test_a_process_that_read_a_session_twice_still_sees_every_change(
        self, client: Any, config: StoreConfig, clock: backends.Clock
    ) -> None:
        # The second read remembers the reply: later ones that match it skip decoding.
        elsewhere = SessionStore(client, config=config, clock=clock)
        here = SessionStore(client, config=config, clock=clock)
        (stepped_up, token) = login(elsewhere, mfa_verified=False)
        revoked, revoked_token = login(elsewhere)
        for _ in range(3):
            assert not here.validate(TENANT, token).mfa_verified
            assert here.validate(TENANT, revoked_token) is not None
        assert elsewhere.mark_mfa_verified(TENANT, stepped_up.id)
        assert elsewhere.revoke(TENANT, 456, revoked.id)
        assert here.validate(TENANT, token).mfa_verified
        assert here.validate(TENANT, token).mfa_verified  # and remembered as it is now
        assert here.validate(TENANT, revoked_token) is None
        clock.advance(24 * 3600)
        assert here.validate(TENANT, token) is None

    def test_malformed_tokens_send_nothing(
        self, store: SessionStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        calls = count_calls(store, monkeypatch)
        for token in ["", "sst_*?[", "sst_" + "\x00" * 64, "sst_" + "é" * 64]:
            assert store.validate(TENANT, token) is None
        assert calls == []


class TestIdleTimeout:
    @pytest.fixture
    def config(self, prefix: str) -> StoreConfig:
        return StoreConfig(prefix=prefix, idle_timeout=timedelta(minutes=30))

    def test_idle_sessions_expire(self, store: SessionStore, clock: backends.Clock) -> None:
        session, token = login(store)
        assert session.expires_at - session.created_at == timedelta(minutes=30)
        clock.advance(30 * 60 + 1)
        assert store.validate(TENANT, token) is None
        assert store.list_user_sessions(TENANT, 456) == []

    def test_activity_slides_the_idle_expiry_but_never_past_the_lifetime(
        self, store: SessionStore, clock: backends.Clock
    ) -> None:
        session, token = login(store)
        for _ in range(60):  # activity every 29 minutes, for longer than the lifetime
            clock.advance(29 * 60)
            current = store.validate(TENANT, token)
            if current is None:
                break
            assert current.expires_at <= session.created_at + timedelta(hours=24)
        assert current is None
        assert clock.now - session.created_at.timestamp() >= 24 * 3600 - 29 * 60


class TestListUserSessions:
    def test_most_recently_active_first(self, store: SessionStore, clock: backends.Clock) -> None:
        first, first_token = login(store)
        clock.advance(1)
        second, _ = login(store, user_agent=IPHONE, ip_address="198.51.100.1")
        clock.advance(120)
        store.validate(TENANT, first_token)
        assert [s.id for s in store.list_user_sessions(TENANT, 456)] == [first.id, second.id]

    def test_only_that_users_live_sessions(
        self, store: SessionStore, clock: backends.Clock
    ) -> None:
        mine, _ = login(store, user_id=1)
        login(store, user_id=2)
        login(store, user_id=1, tenant="other-corp")
        assert [s.id for s in store.list_user_sessions(TENANT, 1)] == [mine.id]
        clock.advance(25 * 3600)
        assert store.list_user_sessions(TENANT, 1) == []

    def test_one_round_trip(self, store: SessionStore, monkeypatch: pytest.MonkeyPatch) -> None:
        for _ in range(3):
            login(store)
        store.list_user_sessions(TENANT, 456)  # loads the script
        calls = count_calls(store, monkeypatch)
        assert len(store.list_user_sessions(TENANT, 456)) == 3
        assert calls == ["evalsha"]

    def test_per_user_cap_evicts_the_oldest_without_an_idle_timeout(
        self, client: Any, prefix: str, clock: backends.Clock
    ) -> None:
        store = SessionStore(
            client, config=StoreConfig(prefix=prefix, max_sessions_per_user=3), clock=clock
        )
        tokens = []
        for _ in range(3):
            tokens.append(login(store)[1])
            clock.advance(61)
        store.validate(TENANT, tokens[0])  # activity does not move the end of its lifetime
        login(store)
        assert store.validate(TENANT, tokens[0]) is None  # evicted: it would end first
        assert all(store.validate(TENANT, token) is not None for token in tokens[1:])

    def test_per_user_cap_evicts_the_least_recently_active_with_an_idle_timeout(
        self, client: Any, prefix: str, clock: backends.Clock
    ) -> None:
        config = StoreConfig(
            prefix=prefix, max_sessions_per_user=3, idle_timeout=timedelta(minutes=30)
        )
        store = SessionStore(client, config=config, clock=clock)
        tokens = []
        for _ in range(3):
            tokens.append(login(store)[1])
            clock.advance(61)
        store.validate(TENANT, tokens[0])  # the oldest is now the most recently active
        clock.advance(61)
        newest, newest_token = login(store)
        assert store.validate(TENANT, tokens[1]) is None  # evicted: least recently active
        alive = [tokens[0], tokens[2], newest_token]
        assert all(store.validate(TENANT, token) is not None for token in alive)
        assert len(store.list_user_sessions(TENANT, 456)) == 3


class TestRevoke:
    def test_revoke_is_immediate(self, store: SessionStore) -> None:
        session, token = login(store)
        assert store.revoke(TENANT, 456, session.id) is True
        assert store.validate(TENANT, token) is None
        assert store.get(TENANT, session.id) is None
        assert store.list_user_sessions(TENANT, 456) == []
        assert store.list_sessions(TENANT).data == []
        assert store.revoke(TENANT, 456, session.id) is False

    def test_only_the_owner_can_be_named(self, store: SessionStore) -> None:
        session, token = login(store, user_id=1)
        assert store.revoke(TENANT, 2, session.id) is False
        assert store.revoke("other-corp", 1, session.id) is False
        assert store.validate(TENANT, token) == session

    def test_malformed_ids_are_rejected(self, store: SessionStore) -> None:
        with pytest.raises(InvalidSessionId):
            store.revoke(TENANT, 1, "sess_*")

    def test_revoke_all_ends_every_session_of_the_user(self, store: SessionStore) -> None:
        tokens = [login(store, user_id=7)[1] for _ in range(5)]
        other, other_token = login(store, user_id=8)
        assert store.revoke_all(TENANT, 7) == 5
        assert all(store.validate(TENANT, token) is None for token in tokens)
        assert store.validate(TENANT, other_token) == other
        assert store.revoke_all(TENANT, 7) == 0

    def test_revoke_all_but_the_current_one(self, store: SessionStore) -> None:
        current, current_token = login(store)
        others = [login(store)[1] for _ in range(3)]
        assert store.revoke_all(TENANT, 456, except_session_id=current.id) == 3
        assert store.validate(TENANT, current_token) == current
        assert all(store.validate(TENANT, token) is None for token in others)

    def test_revoke_all_survives_a_lost_index(
        self, store: SessionStore, client: Any, prefix: str
    ) -> None:
        tokens = [login(store)[1] for _ in range(5)]
        for key in backends.keys_of(client, prefix):
            if key.endswith(b":u"):
                client.delete(key)
        store.revoke_all(TENANT, 456)
        assert all(store.validate(TENANT, token) is None for token in tokens)

    def test_mark_mfa_verified_after_step_up(self, store: SessionStore) -> None:
        session, token = login(store, mfa_verified=False)
        assert store.mark_mfa_verified(TENANT, session.id) is True
        assert store.validate(TENANT, token).mfa_verified is True
        store.revoke(TENANT, 456, session.id)
        assert store.mark_mfa_verified(TENANT, session.id) is False


class TestListSessions:
    def test_newest_first_with_filters(self, store: SessionStore, clock: backends.Clock) -> None:
        made = []
        for user_id, ip in [(1, "10.0.0.1"), (2, "10.0.0.1"), (1, "10.0.0.2"), (3, "10.0.0.3")]:
            made.append(login(store, user_id=user_id, ip_address=ip)[0])
            clock.advance(1)
        newest_first = [s.id for s in reversed(made)]
        assert [s.id for s in store.list_sessions(TENANT).data] == newest_first
        by_user = store.list_sessions(TENANT, user_id=1).data
        assert [s.id for s in by_user] == [made[2].id, made[0].id]
        by_ip = store.list_sessions(TENANT, ip_address="10.0.0.1").data
        assert [s.id for s in by_ip] == [made[1].id, made[0].id]
        both = store.list_sessions(TENANT, user_id=1, ip_address="10.0.0.1").data
        assert [s.id for s in both] == [made[0].id]
        assert store.list_sessions("other-corp").data == []

    @pytest.mark.parametrize("user_id", [None, 5])
    def test_pages_walk_every_session_exactly_once_under_churn(
        self, store: SessionStore, clock: backends.Clock, user_id: int | None
    ) -> None:
        stable = {login(store, user_id=5)[0].id for _ in range(23)}
        doomed = [login(store, user_id=5)[0] for _ in range(6)]
        seen: list[str] = []
        cursor = None
        while True:
            page = store.list_sessions(TENANT, user_id=user_id, limit=4, cursor=cursor)
            seen += [s.id for s in page.data]
            # Churn between pages: new sessions arrive, others are revoked.
            login(store, user_id=5)
            if doomed:
                store.revoke(TENANT, 5, doomed.pop().id)
            if not page.has_more:
                break
            cursor = page.next_cursor
        assert len(seen) == len(set(seen))
        assert stable <= set(seen)

    @pytest.mark.parametrize(
        ("backend", "limit"),
        backends.on_backends([(1,), (7,), (100,)], embedded=(2,)),
        indirect=["backend"],
    )
    def test_pages_follow_creation_order_across_buckets_and_equal_milliseconds(
        self, store: SessionStore, clock: backends.Clock, limit: int
    ) -> None:
        made = []
        # A page of one is a page at every position: 40 sessions of 40 users (over as many
        # buckets, ten a millisecond) take 40 pages; the wider pages page through 120.
        for i in range(40 if limit == 1 else 120):
            made.append(login(store, user_id=i % 40)[0])
            if i % 10 == 9:  # ten sessions share each millisecond
                clock.advance(0.001)
        # Newest first; sessions of one millisecond in the order of their ids' random part.
        order = sorted(made, key=lambda s: (s.created_at, random_part(s.id)), reverse=True)
        expected = [s.id for s in order]
        seen: list[str] = []
        cursor = None
        while True:
            page = store.list_sessions(TENANT, limit=limit, cursor=cursor)
            assert len(page.data) == limit or not page.has_more
            seen += [s.id for s in page.data]
            if not page.has_more:
                break
            cursor = page.next_cursor
        assert seen == expected

    def test_revoked_and_expired_sessions_never_appear(
        self, store: SessionStore, clock: backends.Clock
    ) -> None:
        gone, _ = login(store, user_id=1, ip_address="10.0.0.9")
        store.revoke_all(TENANT, 1)
        clock.advance(1)
        kept, _ = login(store, user_id=2, ip_address="10.0.0.9")
        for listing in (
            store.list_sessions(TENANT),
            store.list_sessions(TENANT, ip_address="10.0.0.9"),
        ):
            assert [s.id for s in listing.data] == [kept.id]
        clock.advance(25 * 3600)
        assert store.list_sessions(TENANT).data == []
        assert gone.id not in {s.id for s in store.list_sessions(TENANT).data}

    @pytest.mark.parametrize("cursor", ["", "!!!", "bm9wZQ", "x" * 500])
    def test_malformed_cursors_are_rejected(self, store: SessionStore, cursor: str) -> None:
        with pytest.raises(InvalidCursor):
            store.list_sessions(TENANT, cursor=cursor)

    @pytest.mark.parametrize("limit", [0, 1001, -1, True, 1.5])
    def test_limit_is_bounded(self, store: SessionStore, limit: Any) -> None:
        with pytest.raises(ValueError):
            store.list_sessions(TENANT, limit=limit)


class TestNothingOutlivesTheSessions:
    @pytest.fixture
    def config(self, prefix: str) -> StoreConfig:
        return StoreConfig(prefix=prefix, lifetime=timedelta(seconds=1))

    def test_every_key_has_a_ttl_and_all_are_gone_after_expiry(
        self, store: SessionStore, client: Any, prefix: str
    ) -> None:
        import time

        for user_id in range(4):
            for ip in ("10.1.0.1", "10.1.0.2"):
                login(store, user_id=user_id, ip_address=ip)
        # Two small keys per prefix stay: the layout marker, kept so no store misreads the keys,
        # and the mark that the sweep's registry needs no SCAN (sweeping.py).
        keys_ = store._core.keys
        layout = sorted([keys_.layout().encode(), keys_.registry_seeded().encode()])
        keys = [key for key in backends.keys_of(client, prefix) if key not in layout]
        assert keys and all(client.pttl(key) > 0 for key in keys)
        deadline = time.time() + 5
        while backends.keys_of(client, prefix) != layout and time.time() < deadline:
            time.sleep(0.1)
        assert backends.keys_of(client, prefix) == layout


def count_calls(store: SessionStore, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every round trip the store makes: direct commands and pipeline executions."""
    calls: list[str] = []
    client = store.client
    direct, pipeline = client.execute_command, client.pipeline

    def execute_command(*args: Any, **kwargs: Any) -> Any:
        calls.append(str(args[0]).lower())
        return direct(*args, **kwargs)

    def counted_pipeline(*args: Any, **kwargs: Any) -> Any:
        pipe = pipeline(*args, **kwargs)
        execute = pipe.execute

        def counted_execute(*a: Any, **k: Any) -> Any:
            calls.append("pipeline")
            return execute(*a, **k)

        pipe.execute = counted_execute
        return pipe

    def counted_raw(*args: Any) -> Any:
        calls.append("pipeline")  # a batch on one connection, as a pipeline sends it
        return run_raw(*args)

    run_raw = _connection.run_raw
    monkeypatch.setattr(client, "execute_command", execute_command)
    monkeypatch.setattr(client, "pipeline", counted_pipeline)
    monkeypatch.setattr(_connection, "run_raw", counted_raw)
    return calls
