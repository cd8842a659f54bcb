"""Session events: every change of a session leaves one event, written in the same script.

Run on every backend with ``StoreConfig(events=True)``; the store's clock is the test's, so
expiry is reached by moving it, never by waiting.
"""

from __future__ import annotations

import ipaddress
import random
import threading
from datetime import timedelta
from typing import Any

import pytest

from sessionstore import (
    AsyncSessionStore,
    InvalidArgument,
    InvalidCursor,
    InvalidIPAddress,
    InvalidSessionId,
    SessionStore,
    StoreConfig,
)
from sessionstore._core import events as events_module
from sessionstore._core.events import GRACE, Event
from sessionstore._core.flows import Batch, Command
from sessionstore._core.kinds import EventType
from sessionstore.errors import InvalidActor
from tests import backends

TENANT = "acme-corp"
IP = "203.0.113.7"
DAY = 86400


@pytest.fixture
def config(prefix: str) -> StoreConfig:
    return StoreConfig(prefix=prefix, events=True, max_sessions_per_user=3)


def login(store: SessionStore, user_id: int = 7, ip: str = IP, **options: Any) -> tuple[Any, str]:
    return store.create(TENANT, user_id, ip_address=ip, user_agent="pytest", **options)


def every_event(store: SessionStore, **filters: Any) -> list[Event]:
    events, cursor = [], None
    while True:
        page = store.events(TENANT, after=cursor, limit=7, **filters)
        events += page.data
        if not page.has_more:
            return events
        cursor = page.next_cursor


def summary(events: list[Event]) -> list[tuple[str, str, str | None]]:
    return [(event.type, event.actor, event.reason) for event in events]


class TestWhatIsRecorded:
    def test_create_is_recorded_with_the_session_and_its_actor(
        self, store: SessionStore, clock: backends.Clock
    ) -> None:
        session, _ = login(store)
        clock.advance(0.01)  # a tenant's events are in time order (ties: by bucket)
        login(store, 8, actor="signup-service")
        first, second = every_event(store)
        assert first.to_dict() | {"id": "", "at": ""} == {
            "id": "",
            "type": "session.created",
            "sessionId": session.id,
            "userId": 7,
            "ipAddress": IP,
            "actor": "user",
            "reason": None,
            "at": "",
        }
        assert first.at == session.created_at
        assert (second.user_id, second.actor) == (8, "signup-service")

    def test_revoke_names_its_actor_and_an_idle_revoke_records_nothing(
        self, store: SessionStore
    ) -> None:
        session, _ = login(store)
        assert store.revoke(TENANT, 7, session.id, actor="admin:k3y1d")
        assert not store.revoke(TENANT, 7, session.id, actor="admin:k3y1d")
        assert summary(every_event(store)) == [
            ("session.created", "user", None),
            ("session.revoked", "admin:k3y1d", None),
        ]

    def test_revoke_all_records_each_session_with_its_reason(self, store: SessionStore) -> None:
        kept, _ = login(store)
        ended = {login(store)[0].id for _ in range(2)}
        assert store.revoke_all(TENANT, 7, except_session_id=kept.id, actor="user") == 2
        revoked = every_event(store, types=["session.revoked"])
        assert {event.session_id for event in revoked} == ended
        assert {(event.actor, event.reason) for event in revoked} == {("user", "revoke_all")}

    def test_bulk_revocation_records_each_session_with_the_admin_as_actor(
        self, store: SessionStore
    ) -> None:
        for user in (1, 2, 3):
            login(store, user, ip="198.51.100.66")
        store.revoke_sessions(TENANT, ip_address="198.51.100.66", actor="admin:k3y1d")
        revoked = every_event(store, types=["session.revoked"])
        assert sorted(event.user_id for event in revoked) == [1, 2, 3]  # type: ignore[type-var]
        assert {(event.actor, event.reason) for event in revoked} == {("admin:k3y1d", "bulk")}

    def test_the_cap_records_what_it_evicts(
        self, store: SessionStore, clock: backends.Clock
    ) -> None:
        oldest, _ = login(store)
        for _ in range(3):
            clock.advance(1)  # the cap evicts the session that would end first
            login(store)
        (evicted,) = every_event(store, types=["session.evicted"])
        assert (evicted.session_id, evicted.actor, evicted.reason) == (oldest.id, "system", "cap")

    def test_mfa_is_recorded_once(self, store: SessionStore) -> None:
        session, _ = login(store)
        assert store.mark_mfa_verified(TENANT, session.id)
        assert store.mark_mfa_verified(TENANT, session.id)  # already verified: no new event
        assert summary(every_event(store, types=["session.mfa_verified"])) == [
            ("session.mfa_verified", "user", None)
        ]

    def test_a_touch_is_not_an_event(self, store: SessionStore, clock: backends.Clock) -> None:
        _, token = login(store)
        for _ in range(3):
            clock.advance(120)  # past the touch interval: each validate records activity
            assert store.validate(TENANT, token) is not None
        assert summary(every_event(store)) == [("session.created", "user", None)]

    def test_a_bad_actor_is_refused_before_redis(self, store: SessionStore) -> None:
        for actor in ("", "has space", "x" * 65, "emoji-🙂", None):
            with pytest.raises(InvalidActor):
                login(store, actor=actor)
        assert every_event(store) == []


class TestExpiry:
    """session.expired comes once, when the store first learns of the end."""

    @pytest.mark.parametrize("learns", ["validate", "list_user_sessions", "list_sessions"])
    def test_the_first_reader_after_the_end_records_it_once(
        self, store: SessionStore, clock: backends.Clock, learns: str
    ) -> None:
        session, token = login(store)
        clock.advance(2 * DAY)
        for _ in range(2):
            if learns == "validate":
                assert store.validate(TENANT, token) is None
            elif learns == "list_user_sessions":
                assert store.list_user_sessions(TENANT, 7) == []
            else:
                assert store.list_sessions(TENANT).data == []
        (expired,) = every_event(store, types=["session.expired"])
        assert (expired.session_id, expired.user_id, expired.actor) == (session.id, 7, "system")

    def test_the_ended_hash_outlives_its_end_by_the_grace_only_with_events(
        self, client: Any, prefix: str, clock: backends.Clock
    ) -> None:
        # Off first: a store configured with events turns them on for the whole prefix.
        for events, extra in ((False, timedelta(0)), (True, GRACE)):
            store = SessionStore(
                client, config=StoreConfig(prefix=prefix, events=events), clock=clock
            )
            session, _ = login(store)
            ttl_ms = client.pttl(store._core.keys.session(TENANT, session.id))
            expected = (session.expires_at.timestamp() - clock.now) * 1000 + extra / timedelta(
                milliseconds=1
            )
            # Redis counts down from its own clock: allow a second of it.
            assert expected - 1000 < ttl_ms <= expected + 1

    def test_the_background_sweep_records_what_nobody_asked_about(
        self, store: SessionStore, clock: backends.Clock
    ) -> None:
        ended = [login(store, user)[0] for user in range(5)]
        other_tenant, _ = store.create("globex", 1, ip_address=IP, user_agent="pytest")
        clock.advance(2 * DAY)  # every one ends; no call touches their buckets afterwards
        assert store.sweep_expired() >= 5
        expired = every_event(store, types=["session.expired"])
        assert sorted(e.session_id for e in expired) == sorted(s.id for s in ended)
        assert {(e.user_id, e.actor) for e in expired} == {(s.user_id, "system") for s in ended}
        assert store.events("globex", types=["session.expired"]).data[0].session_id == (
            other_tenant.id
        )
        # Every index emptied with its sessions: a second sweep finds no bucket, records nothing.
        assert store.sweep_expired() == 0
        assert len(every_event(store, types=["session.expired"])) == 5


class TestReading:
    def test_a_users_events_are_in_order_and_pages_miss_nothing(
        self, store: SessionStore, clock: backends.Clock
    ) -> None:
        made = []
        for n in range(12):
            session, _ = login(store, user_id=n % 4)
            made.append(session.id)
            clock.advance(0.01)
        events = every_event(store)
        assert [event.session_id for event in events] == made
        assert len({event.id for event in events}) == 12
        mine = every_event(store, user_id=1)
        assert [event.session_id for event in mine] == made[1::4]

    def test_events_of_other_tenants_are_never_seen(self, store: SessionStore) -> None:
        store.create("globex", 7, ip_address=IP, user_agent="pytest")
        assert every_event(store) == []

    def test_bad_filters_and_cursors_are_refused(self, store: SessionStore) -> None:
        with pytest.raises(InvalidArgument):
            store.events(TENANT, types=["session.deleted"])
        for cursor in ("", "abc", "1-2", "1-2-XYZ"):
            with pytest.raises(InvalidCursor):
                store.events(TENANT, after=cursor)

    def test_tail_yields_only_what_comes_next(self, store: SessionStore) -> None:
        login(store, 1)
        stream = store.tail(TENANT, poll=0.05)
        later = threading.Timer(0.3, lambda: login(store, 2))
        later.start()
        event = next(stream)
        later.join()
        assert (event.type, event.user_id) == ("session.created", 2)

    @pytest.mark.timeout(20)  # before the fix, the tail waited for a third event forever
    def test_tail_starts_after_the_newest_event_when_called_not_when_first_read(
        self, store: SessionStore
    ) -> None:
        # A loaded process may read its tail late: what came in between is still its first.
        login(store, 1)
        stream = store.tail(TENANT, poll=0.05)
        login(store, 2)
        event = next(stream)
        assert (event.type, event.user_id) == ("session.created", 2)


def test_events_are_off_unless_asked_for(client: Any, prefix: str) -> None:
    store = SessionStore(client, config=StoreConfig(prefix=prefix))
    session, _ = login(store)
    store.revoke(TENANT, 7, session.id)
    assert store.events(TENANT).data == []
    assert not [key for key in backends.keys_of(client, prefix) if key.endswith(b":e")]


@pytest.mark.usefixtures("client")  # its teardown deletes the prefix
async def test_the_async_store_sweeps_too(
    backend: str, fake_server: Any, config: StoreConfig, clock: backends.Clock
) -> None:
    store = AsyncSessionStore(
        backends.async_client(backend, fake_server), config=config, clock=clock
    )
    session, _ = await store.create(TENANT, 7, ip_address=IP, user_agent="pytest")
    clock.advance(2 * DAY)
    assert await store.sweep_expired() >= 1
    page = await store.events(TENANT, types=["session.expired"])
    assert [event.session_id for event in page.data] == [session.id]
    await store.aclose()


@pytest.mark.usefixtures("client")  # its teardown deletes the prefix
async def test_the_async_store_reads_and_tails_the_same_events(
    backend: str, fake_server: Any, config: StoreConfig
) -> None:
    store = AsyncSessionStore(backends.async_client(backend, fake_server), config=config)
    first, _ = await store.create(TENANT, 7, ip_address=IP, user_agent="pytest")
    page = await store.events(TENANT)
    assert [event.session_id for event in page.data] == [first.id]
    stream = store.tail(TENANT, after=page.data[0].id, poll=0.05)
    second, _ = await store.create(TENANT, 8, ip_address=IP, user_agent="pytest")
    assert (await anext(stream)).session_id == second.id
    await stream.aclose()
    await store.aclose()


@pytest.mark.timeout(20)
@pytest.mark.usefixtures("client")  # its teardown deletes the prefix
async def test_the_async_tail_starts_where_its_docstring_says(
    backend: str, fake_server: Any, config: StoreConfig
) -> None:
    # An async call reads nothing before it is awaited: its start is fixed now only when the
    # caller asks for the newest event id first.
    store = AsyncSessionStore(backends.async_client(backend, fake_server), config=config)
    await store.create(TENANT, 7, ip_address=IP, user_agent="pytest")
    stream = store.tail(TENANT, after=await store.newest_event_id(TENANT), poll=0.05)
    second, _ = await store.create(TENANT, 8, ip_address=IP, user_agent="pytest")
    assert (await anext(stream)).session_id == second.id
    await stream.aclose()
    await store.aclose()


# -- the budget of a page ---------------------------------------------------------------------


READS = ("XRANGE", "XREVRANGE")  # a page's reads, oldest first and newest first


class Reads:
    """What the store sends, batch by batch, since the last ``reset``: round trips, and the
    stream entries XRANGE and XREVRANGE answered (read) and asked for (their COUNTs)."""

    def __init__(self, store: SessionStore, monkeypatch: pytest.MonkeyPatch) -> None:
        self.reset()
        inner = store._run

        def counted(batch: Batch) -> list[Any]:
            replies = inner(batch)
            self.round_trips += 1
            for call, reply in zip(batch, replies, strict=True):
                if isinstance(call, Command) and call.args[0] in READS:
                    self.asked += int(call.args[call.args.index("COUNT") + 1])
                    self.answered += len(reply)
            return replies

        monkeypatch.setattr(store, "_run", counted)

    def reset(self) -> None:
        self.round_trips = self.asked = self.answered = 0


def most_round_trips(buckets: int) -> int:
    """MAX_ROUNDS rounds, each of one round trip per BATCH buckets at most."""
    return events_module.MAX_ROUNDS * -(-buckets // events_module.BATCH)


def stored_events(client: Any, store: SessionStore, tenant: str = TENANT) -> list[tuple]:
    """Every event of the tenant as Redis holds it, read with XRANGE and nothing of events.py:
    (id, type, user id), in the order a tenant's events are read: time, sequence, bucket."""
    keys = store._core.keys
    found = []
    for bucket in keys.all_buckets():
        for stream_id, fields in client.xrange(keys.events(tenant, bucket)):
            ms, sequence = (int(part) for part in stream_id.decode().split("-"))
            owner = fields[b"u"]
            found.append(
                (
                    (ms, sequence, bucket),
                    EventType.coded(fields[b"t"]).type_name,
                    int(owner) if owner else None,
                )
            )
    return [(f"{ms}-{seq}-{bucket}", kind, user) for (ms, seq, bucket), kind, user in sorted(found)]


def fill(store: SessionStore, clock: backends.Clock, users: int, rounds: int) -> None:
    """``users`` x ``rounds`` logins, spread over buckets and time, under the cap of 3: so
    created and evicted events, and now and then a revocation or an MFA step."""
    for n in range(rounds):
        for user in range(users):
            session, _ = login(store, user)
            if (n + user) % 5 == 0:
                store.mark_mfa_verified(TENANT, session.id)
            if (n * users + user) % 11 == 0:
                store.revoke(TENANT, user, session.id)
            clock.advance(0.001 * (1 + user % 3))


def walk(
    store: SessionStore, reads: Reads, limit: int, **filters: Any
) -> tuple[list[Event], list[tuple[int, bool, int, int]]]:
    """Every page of a query: the events, and per page (items, cursor, entries read, round
    trips)."""
    found: list[Event] = []
    pages = []
    cursor = None
    while True:
        reads.reset()
        page = store.events(TENANT, after=cursor, limit=limit, **filters)
        pages.append((len(page.data), page.has_more, reads.answered, reads.round_trips))
        assert len(page.data) <= limit
        found += page.data
        if not page.has_more:
            return found, pages
        assert page.next_cursor is not None and page.next_cursor != cursor  # always progress
        cursor = page.next_cursor


class TestPageBudget:
    """A page reads at most events_module.PAGE_BUDGET stream entries, whatever the bucket count and
    the filter, and stops there with a cursor; paging on yields exactly the matching events."""

    @pytest.mark.parametrize(
        ("backend", "buckets", "budget", "limit", "filters", "stops_short"),
        backends.on_backends(
            [
                (4, 30, 7, {"types": ["session.revoked"]}, True),
                (4, 30, 7, {}, False),
                (4, 30, 3, {"user_id": 2}, True),  # a tenth of its bucket
                (4, 30, 2, {"types": ["session.mfa_verified"], "user_id": 1}, True),
                (128, 130, 5, {"types": ["session.revoked"]}, True),
                (128, 200, 40, {}, False),
                # After the first round, less budget than buckets behind: the least read go
                # first.
                (16, 20, 3, {"types": ["session.evicted"]}, True),
            ],
            embedded=(0, 6),
        ),
        indirect=["backend"],
    )
    def test_paging_yields_exactly_the_matching_events_in_order_within_the_budget(
        self,
        client: Any,
        prefix: str,
        clock: backends.Clock,
        monkeypatch: pytest.MonkeyPatch,
        buckets: int,
        budget: int,
        limit: int,
        filters: dict[str, Any],
        stops_short: bool,
    ) -> None:
        store = SessionStore(
            client,
            config=StoreConfig(
                prefix=prefix, events=True, max_sessions_per_user=3, tenant_buckets=buckets
            ),
            clock=clock,
        )
        fill(store, clock, users=40, rounds=8)
        monkeypatch.setattr(events_module, "PAGE_BUDGET", budget, raising=False)
        reads = Reads(store, monkeypatch)

        found, pages = walk(store, reads, limit, **filters)

        kinds, user = filters.get("types"), filters.get("user_id")
        expected = [
            event_id
            for event_id, kind, owner in stored_events(client, store)
            if (kinds is None or kind in kinds) and (user is None or owner == user)
        ]
        assert expected, "the data holds matching events"
        assert [event.id for event in found] == expected  # none skipped, none twice, in order
        assert all(entries <= budget for _, _, entries, _ in pages), pages
        assert all(trips <= most_round_trips(buckets) for _, _, _, trips in pages), pages
        # A sparse filter: the budget did stop pages short (fewer items than the limit, yet a
        # cursor). Without one, every page but the last is full.
        short = [more and items < limit for items, more, _, _ in pages]
        assert any(short) if stops_short else not any(short), pages

    # 2,180 logins: seconds of emulated Lua on the embedded server, whose paging the cases
    # above cover.
    @pytest.mark.parametrize("backend", backends.REAL_BACKENDS, indirect=True)
    def test_a_page_matching_nothing_reads_its_budget_then_hands_back_a_cursor(
        self,
        client: Any,
        prefix: str,
        clock: backends.Clock,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """The issue's page (limit 1000, a type no event has), at the real budget: 2,000
        entries however many a bucket holds, and an empty page with a cursor is an answer;
        oldest first and newest first."""
        store = SessionStore(
            client, config=StoreConfig(prefix=prefix, events=True, max_sessions_per_user=1),
            clock=clock,
        )  # fmt: skip
        for _ in range(55):  # 20 users x 55 logins under a cap of 1: 2,180 events
            for user in range(20):
                login(store, user)
                clock.advance(0.0005)
        total = len(stored_events(client, store))
        assert total > 2000
        reads = Reads(store, monkeypatch)

        found, pages = walk(store, reads, 1000, types=["session.revoked"])

        assert found == []
        assert events_module.PAGE_BUDGET == 2000
        assert pages[0][:2] == (0, True)  # stopped at the budget, with a cursor
        assert all(entries <= 2000 for _, _, entries, _ in pages), pages
        assert all(trips <= most_round_trips(128) for _, _, _, trips in pages), pages
        assert reads.answered <= 2000
        # Newest first, the same: the budget, then a cursor to go back on from.
        back, pages = walk_back(store, reads, 1000, types=["session.revoked"])
        assert back == []
        assert pages[0][:2] == (0, True)
        assert all(entries <= 2000 for _, _, entries, _ in pages), pages
        assert all(trips <= most_round_trips(128) for _, _, _, trips in pages), pages

    def test_an_unfiltered_page_still_answers_its_limit(
        self, store: SessionStore, clock: backends.Clock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Starting small per bucket costs a full page nothing: of 150 events over 128
        buckets, a page of 100 comes whole, then the other 50 and the end."""
        for n in range(150):
            login(store, n)
            clock.advance(0.001)
        reads = Reads(store, monkeypatch)
        page = store.events(TENANT, limit=100)
        assert len(page.data) == 100 and page.has_more
        assert (
            reads.answered <= events_module.PAGE_BUDGET
            and reads.round_trips <= most_round_trips(128)
        )
        after = store.events(TENANT, after=page.next_cursor, limit=100)
        assert len(after.data) == 50 and not after.has_more

    async def test_the_async_store_reads_within_the_same_budget(
        self,
        backend: str,
        fake_server: Any,
        prefix: str,
        clock: backends.Clock,
        monkeypatch: pytest.MonkeyPatch,
        client: Any,
    ) -> None:
        config = StoreConfig(prefix=prefix, events=True, max_sessions_per_user=3, tenant_buckets=4)
        store = SessionStore(client, config=config, clock=clock)
        fill(store, clock, users=12, rounds=6)
        monkeypatch.setattr(events_module, "PAGE_BUDGET", 20, raising=False)
        astore = AsyncSessionStore(
            backends.async_client(backend, fake_server), config=config, clock=clock
        )
        read = []  # entries each XRANGE answered
        inner = astore._run

        async def counted(batch: Batch) -> list[Any]:
            replies = await inner(batch)
            read.extend(
                len(reply) for call, reply in zip(batch, replies, strict=True)
                if isinstance(call, Command) and call.args[0] == "XRANGE"
            )  # fmt: skip
            return replies

        monkeypatch.setattr(astore, "_run", counted)
        found, cursor = [], None
        short = False
        while True:
            read.clear()
            page = await astore.events(TENANT, after=cursor, limit=4, types=["session.revoked"])
            assert sum(read) <= 20
            short = short or (page.has_more and len(page.data) < 4)
            found += [event.id for event in page.data]
            if not page.has_more:
                break
            cursor = page.next_cursor
        await astore.aclose()
        expected = [e for e, kind, _ in stored_events(client, store) if kind == "session.revoked"]
        assert found == expected
        assert short  # the budget stopped a page

    @pytest.mark.parametrize("seed", [1, 2, 3])
    def test_any_budget_limit_filter_and_starting_point_pages_exactly(
        self,
        client: Any,
        prefix: str,
        clock: backends.Clock,
        monkeypatch: pytest.MonkeyPatch,
        seed: int,
    ) -> None:
        """Random shapes: bucket counts, budgets down to one entry a bucket, bursts of events
        in one millisecond, every filter, and a start from any event id."""
        draw = random.Random(seed)
        buckets = draw.choice([1, 2, 5, 16])
        store = SessionStore(
            client,
            config=StoreConfig(
                prefix=prefix, events=True, max_sessions_per_user=2, tenant_buckets=buckets
            ),
            clock=clock,
        )
        for _ in range(120):
            session, _ = login(store, draw.randrange(30))
            if draw.random() < 0.15:
                store.revoke(TENANT, session.user_id, session.id)
            clock.advance(draw.choice([0, 0, 0.0004, 0.002, 0.05]))  # bursts and gaps
        stored = stored_events(client, store)
        reads = Reads(store, monkeypatch)
        for _ in range(6):
            budget = draw.randint(buckets, 3 * buckets + 20)
            monkeypatch.setattr(events_module, "PAGE_BUDGET", budget, raising=False)
            filters: dict[str, Any] = draw.choice(
                [{}, {"types": ["session.revoked"]}, {"types": ["session.evicted"]}]
            )
            if draw.random() < 0.3:
                filters["user_id"] = draw.randrange(30)
            start = draw.randrange(len(stored) + 1)
            after = stored[start - 1][0] if start else None
            found, cursor = [], after
            while True:
                reads.reset()
                page = store.events(TENANT, after=cursor, limit=draw.randint(1, 9), **filters)
                assert reads.answered <= budget
                assert reads.round_trips <= most_round_trips(buckets)
                found += [event.id for event in page.data]
                if not page.has_more:
                    break
                assert page.next_cursor != cursor
                cursor = page.next_cursor
            kinds, user = filters.get("types"), filters.get("user_id")
            assert found == [
                event_id
                for event_id, kind, owner in stored[start:]
                if (kinds is None or kind in kinds) and (user is None or owner == user)
            ], (budget, filters, start)


# -- newest first, by IP address, by session ---------------------------------------------------

ADDRESSES = ("203.0.113.7", "198.51.100.23", "2001:db8::5")


def stored_entries(client: Any, store: SessionStore) -> list[dict[str, Any]]:
    """Every event of the tenant as Redis holds it (read with XRANGE, nothing of events.py),
    oldest first, with what each filter looks at."""
    keys = store._core.keys
    found = []
    for bucket in keys.all_buckets():
        for stream_id, fields in client.xrange(keys.events(TENANT, bucket)):
            ms, sequence = (int(part) for part in stream_id.decode().split("-"))
            owner = fields[b"u"]
            found.append(
                {
                    "order": (ms, sequence, bucket),
                    "id": f"{ms}-{sequence}-{bucket}",
                    "type": EventType.coded(fields[b"t"]).type_name,
                    "user_id": int(owner) if owner else None,
                    "ip_address": str(ipaddress.ip_address(fields[b"ip"])),
                    "session_id": f"sess_{bucket}{fields[b's'].decode()}",
                }
            )
    return sorted(found, key=lambda entry: entry["order"])


def matching(entries: list[dict[str, Any]], filters: dict[str, Any]) -> list[str]:
    """The ids of the entries every filter passes, as store.events names its filters."""
    checks = {
        "types": lambda entry, kinds: entry["type"] in kinds,
        "user_id": lambda entry, user: entry["user_id"] == user,
        "ip_address": lambda entry, ip: entry["ip_address"] == ip,
        "session_id": lambda entry, session: entry["session_id"] == session,
    }
    return [
        entry["id"]
        for entry in entries
        if all(checks[name](entry, value) for name, value in filters.items())
    ]


def walk_back(
    store: SessionStore, reads: Reads, limit: int, before: str | None = None, **filters: Any
) -> tuple[list[str], list[tuple[int, bool, int, int]]]:
    """Every page of a newest-first query from ``before``: the event ids, and per page
    (items, cursor, entries read, round trips)."""
    found: list[str] = []
    pages = []
    cursor = before
    while True:
        reads.reset()
        page = store.events(TENANT, before=cursor, order="desc", limit=limit, **filters)
        pages.append((len(page.data), page.has_more, reads.answered, reads.round_trips))
        assert len(page.data) <= limit
        found += [event.id for event in page.data]
        if not page.has_more:
            return found, pages
        assert page.next_cursor is not None and page.next_cursor != cursor  # always progress
        cursor = page.next_cursor


def spread(store: SessionStore, clock: backends.Clock, draw: random.Random, logins: int) -> None:
    """Logins of 30 users from a few addresses (one written IPv4-mapped), in bursts and gaps,
    with revocations now and then and the cap of 2 evicting: every type, user and address."""
    for _ in range(logins):
        address = draw.choice([*ADDRESSES, "::ffff:203.0.113.7"])
        session, _ = login(store, draw.randrange(30), ip=address)
        if draw.random() < 0.15:
            store.revoke(TENANT, session.user_id, session.id)
        clock.advance(draw.choice([0, 0, 0.0004, 0.002, 0.05]))


class TestNewestFirst:
    """``order="desc"``: the same events, newest first, back from ``before``; within the same
    budget and round trips as oldest first."""

    @pytest.mark.parametrize("seed", [1, 2, 3])
    def test_any_budget_limit_filter_and_starting_point_pages_back_exactly(
        self,
        client: Any,
        prefix: str,
        clock: backends.Clock,
        monkeypatch: pytest.MonkeyPatch,
        seed: int,
    ) -> None:
        draw = random.Random(seed)
        buckets = draw.choice([1, 2, 5, 16])
        store = SessionStore(
            client,
            config=StoreConfig(
                prefix=prefix, events=True, max_sessions_per_user=2, tenant_buckets=buckets
            ),
            clock=clock,
        )
        spread(store, clock, draw, 120)
        stored = stored_entries(client, store)
        reads = Reads(store, monkeypatch)
        for _ in range(6):
            budget = draw.randint(buckets, 3 * buckets + 20)
            monkeypatch.setattr(events_module, "PAGE_BUDGET", budget, raising=False)
            filters: dict[str, Any] = draw.choice(
                [{}, {"types": ["session.revoked"]}, {"ip_address": ADDRESSES[1]}]
            )
            if draw.random() < 0.3:
                filters["user_id"] = draw.randrange(30)
            end = draw.randrange(len(stored) + 1)
            before = stored[end]["id"] if end < len(stored) else None
            found, pages = walk_back(store, reads, draw.randint(1, 9), before, **filters)
            assert found == matching(stored[:end], filters)[::-1], (budget, filters, end)
            assert all(entries <= budget for _, _, entries, _ in pages), pages
            assert all(trips <= most_round_trips(buckets) for _, _, _, trips in pages), pages

    @pytest.mark.parametrize(
        ("backend", "buckets", "budget", "limit", "filters"),
        backends.on_backends(
            [
                (4, 30, 7, {"types": ["session.revoked"]}),
                (128, 200, 40, {}),
                (16, 20, 3, {"types": ["session.evicted"], "ip_address": "203.0.113.7"}),
            ],
            embedded=(2,),
        ),
        indirect=["backend"],
    )
    def test_newest_first_is_oldest_first_reversed_within_the_same_budget(
        self,
        client: Any,
        prefix: str,
        clock: backends.Clock,
        monkeypatch: pytest.MonkeyPatch,
        buckets: int,
        budget: int,
        limit: int,
        filters: dict[str, Any],
    ) -> None:
        store = SessionStore(
            client,
            config=StoreConfig(
                prefix=prefix, events=True, max_sessions_per_user=3, tenant_buckets=buckets
            ),
            clock=clock,
        )
        for n in range(8):
            for user in range(40):
                session, _ = login(store, user, ip=ADDRESSES[(n + user) % 3])
                if (n * 40 + user) % 11 == 0:
                    store.revoke(TENANT, user, session.id)
                clock.advance(0.001 * (1 + user % 3))
        monkeypatch.setattr(events_module, "PAGE_BUDGET", budget, raising=False)
        reads = Reads(store, monkeypatch)

        forward, forward_pages = walk(store, reads, limit, **filters)
        backward, backward_pages = walk_back(store, reads, limit, **filters)

        assert forward, "the data holds matching events"
        assert backward == [event.id for event in forward][::-1]
        assert backward == matching(stored_entries(client, store), filters)[::-1]
        for pages in (forward_pages, backward_pages):
            assert all(entries <= budget for _, _, entries, _ in pages), pages
            assert all(trips <= most_round_trips(buckets) for _, _, _, trips in pages), pages
            if not filters:  # without a filter every page but the last is full, either way
                assert not any(more and items < limit for items, more, _, _ in pages), pages

    def test_a_burst_in_one_millisecond_fills_a_page_either_way(
        self, store: SessionStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A stream's sequence numbers count its entries within a millisecond, so a page
        needs no estimate there: 55 events of one bucket and 4 of another, all in one
        millisecond (the clock stands still), fill a page of 50 newest first as oldest first
        (estimated per millisecond, the busy bucket's reads grew a quarter a round, and the
        page stopped short at 44)."""
        keys = store._core.keys
        assert keys.bucket_of(TENANT, 1) != keys.bucket_of(TENANT, 2)
        for user in [1] * 55 + [2] * 4:
            login(store, user)
        reads = Reads(store, monkeypatch)
        for order in ("asc", "desc"):
            reads.reset()
            page = store.events(TENANT, order=order, limit=50)
            assert len(page.data) == 50 and page.has_more, order
            assert reads.round_trips <= most_round_trips(128)

    def test_the_newest_come_first_and_before_goes_back_from_any_event(
        self, store: SessionStore, clock: backends.Clock
    ) -> None:
        made = []
        for n in range(9):
            made.append(login(store, n % 3)[0].id)
            clock.advance(0.01)
        newest = store.events(TENANT, order="desc", limit=4)
        assert [event.session_id for event in newest.data] == made[::-1][:4]
        older = store.events(TENANT, order="desc", before=newest.next_cursor, limit=4)
        assert [event.session_id for event in older.data] == made[::-1][4:8]
        # Any event id is a cursor both ways: back from the 5th, on from it.
        fifth = every_event(store)[4].id
        back = store.events(TENANT, order="desc", before=fifth)
        assert [event.session_id for event in back.data] == made[:4][::-1]
        assert not back.has_more
        on = store.events(TENANT, after=fifth)
        assert [event.session_id for event in on.data] == made[5:]

    def test_orders_take_only_their_own_cursor(self, store: SessionStore) -> None:
        login(store)
        (event,) = every_event(store)
        with pytest.raises(InvalidArgument, match="order"):
            store.events(TENANT, order="newest")
        with pytest.raises(InvalidArgument, match="before="):
            store.events(TENANT, order="desc", after=event.id)
        with pytest.raises(InvalidArgument, match="order=desc"):
            store.events(TENANT, before=event.id)
        for cursor in ("", "abc", "1-2", "1-2-XYZ"):
            with pytest.raises(InvalidCursor):
                store.events(TENANT, order="desc", before=cursor)


class TestByAddressAndSession:
    def test_events_from_one_address_in_any_spelling_combined_with_user_and_type(
        self, store: SessionStore, clock: backends.Clock
    ) -> None:
        suspect = "2001:db8::5"
        theirs = [login(store, user, ip=suspect)[0] for user in (1, 2, 3)]
        login(store, 1, ip="198.51.100.23")
        mapped = login(store, 4, ip="::ffff:203.0.113.9")[0]
        clock.advance(0.01)
        store.revoke_sessions(TENANT, ip_address=suspect, actor="admin:k3y1d")

        found = every_event(store, ip_address="2001:DB8:0::5")  # normalised as list_sessions'
        assert {event.session_id for event in found} == {session.id for session in theirs}
        assert {event.ip_address for event in found} == {suspect}
        assert summary(every_event(store, ip_address=suspect, user_id=2)) == [
            ("session.created", "user", None),
            ("session.revoked", "admin:k3y1d", "bulk"),
        ]
        newest = store.events(TENANT, ip_address=suspect, types=["session.revoked"], order="desc")
        assert sorted(event.session_id for event in newest.data) == sorted(s.id for s in theirs)
        assert [event.session_id for event in every_event(store, ip_address="203.0.113.9")] == [
            mapped.id
        ]
        assert every_event(store, ip_address="192.0.2.1") == []
        for bad in ("203.0.113.300", "10.0.0.0/8", "fe80::1%eth0", ""):
            with pytest.raises(InvalidIPAddress):
                store.events(TENANT, ip_address=bad)

    def test_a_sessions_events_even_after_it_ended(self, store: SessionStore) -> None:
        session, _ = login(store, 5)
        other, _ = login(store, 5)
        store.mark_mfa_verified(TENANT, session.id)
        store.revoke(TENANT, 5, session.id, actor="admin:k3y1d")
        assert summary(every_event(store, session_id=session.id)) == [
            ("session.created", "user", None),
            ("session.mfa_verified", "user", None),
            ("session.revoked", "admin:k3y1d", None),
        ]
        newest = store.events(TENANT, session_id=session.id, order="desc", limit=1)
        assert [event.type for event in newest.data] == ["session.revoked"]
        assert every_event(store, session_id=session.id, user_id=6) == []  # another bucket's
        assert len(every_event(store, session_id=other.id, user_id=5)) == 1
        with pytest.raises(InvalidSessionId):
            store.events(TENANT, session_id="sess_nope")

    async def test_the_async_store_reads_newest_first_and_by_address_the_same(
        self, store: SessionStore, astore: AsyncSessionStore, clock: backends.Clock
    ) -> None:
        for n in range(6):
            login(store, n, ip=ADDRESSES[n % 2])
            clock.advance(0.01)
        for filters in ({"order": "desc", "limit": 4}, {"ip_address": ADDRESSES[1]}):
            sync_page = store.events(TENANT, **filters)
            async_page = await astore.events(TENANT, **filters)
            assert async_page == sync_page
        more = await astore.events(
            TENANT, order="desc", before=sync_page.data[-1].id, ip_address=ADDRESSES[1]
        )
        assert [event.user_id for event in more.data] == [3, 1]  # back from the newest of it
