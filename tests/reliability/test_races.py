"""Races between threads: a revocation, once returned, is never undone by a concurrent call."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from sessionstore import IndexInconsistent, SessionStore, StoreConfig
from tests import backends

TENANT = "acme-corp"
USER = 5
TOUCH_ROUNDS = 1000
# The embedded server emulates Lua in Python (several times slower a round): a quarter of the
# rounds there, all of them in the fuzzing profile (SESSIONSTORE_DEEP=1).
EMBEDDED_TOUCH_ROUNDS = TOUCH_ROUNDS if backends.DEEP else 250
CREATE_ROUNDS = 30
VALIDATIONS_AFTER_REVOKE = 3
# A thread that waits for another gives up after this (a guard against hanging, not a timing).
WAIT_LIMIT = 30.0


@pytest.fixture
def eager_store(client: Any, config: StoreConfig) -> SessionStore:
    """Real time, and every validation records activity: each one writes to the session."""
    return SessionStore(client, config=replace(config, touch_interval=timedelta(0)))


def new_session(store: SessionStore, user_id: int = USER) -> tuple[Any, str]:
    return store.create(TENANT, user_id, ip_address="198.51.100.20", user_agent="pytest")


def validate_until_revoked(
    store: SessionStore, token: str, started: threading.Event, revoked: threading.Event
) -> int:
    """Validate (and touch) in a loop; count successes that started after the revoke returned."""
    late_successes = checked = 0
    deadline = time.monotonic() + WAIT_LIMIT
    while checked < VALIDATIONS_AFTER_REVOKE:
        assert time.monotonic() < deadline, "the revoke never returned"
        after_revoke = revoked.is_set()
        session = store.validate(TENANT, token)
        started.set()
        if after_revoke:
            checked += 1
            late_successes += session is not None
    return late_successes


def revoke_when_started(
    store: SessionStore, session_id: str, started: threading.Event, revoked: threading.Event
) -> bool:
    assert started.wait(WAIT_LIMIT), "the validations never started"
    done = store.revoke(TENANT, USER, session_id)
    revoked.set()
    return done


def test_touch_never_revives_a_revoked_session(
    eager_store: SessionStore, client: Any, prefix: str, backend: str
) -> None:
    late_successes = 0
    rounds = EMBEDDED_TOUCH_ROUNDS if backend == "fake" else TOUCH_ROUNDS
    with ThreadPoolExecutor(max_workers=2) as pool:
        for _ in range(rounds):
            session, token = new_session(eager_store)
            started, revoked = threading.Event(), threading.Event()
            validating = pool.submit(validate_until_revoked, eager_store, token, started, revoked)
            revoking = pool.submit(revoke_when_started, eager_store, session.id, started, revoked)
            assert revoking.result()
            late_successes += validating.result()
    assert late_successes == 0
    # No touch recreated a revoked session's hash (it would have no owner and no index).
    assert not [key for key in backends.keys_of(client, prefix) if b":s:" in key]


def create_until(
    store: SessionStore, user_id: int, issued: list[str], stop: threading.Event
) -> None:
    while not stop.is_set() and len(issued) < 60:
        issued.append(new_session(store, user_id)[1])


def test_revoke_all_ends_every_session_issued_before_it(store: SessionStore) -> None:
    with ThreadPoolExecutor(max_workers=1) as pool:
        for round_ in range(CREATE_ROUNDS):
            user_id = 100 + round_
            issued: list[str] = []
            stop = threading.Event()
            creating = pool.submit(create_until, store, user_id, issued, stop)
            while len(issued) < 3:
                assert not creating.done(), creating.result()  # it failed: say how
                time.sleep(0.001)
            before = list(issued)  # all of these returned before revoke_all started
            revoked = store.revoke_all(TENANT, user_id)
            stop.set()
            creating.result()
            assert revoked >= len(before)
            assert [t for t in before if store.validate(TENANT, t) is not None] == []


def test_revoke_all_without_the_user_index(store: SessionStore, client: Any) -> None:
    """Validity lives in the user index: losing it loses the sessions, never keeps them;
    revoke_all then finds them through the bucket, ends them, and says the index was lost."""
    sessions = [new_session(store) for _ in range(5)]
    neighbour = store.create(TENANT, USER + 1, ip_address="198.51.100.9", user_agent="x")[1]
    client.delete(store._core.keys.user_index(TENANT, USER))
    with pytest.raises(IndexInconsistent, match="5 of their sessions"):
        store.revoke_all(TENANT, USER)
    assert [s for s, _ in sessions if client.exists(store._core.keys.session(TENANT, s.id))] == []
    assert [s.id for s, token in sessions if store.validate(TENANT, token) is not None] == []
    assert store.revoke_all(TENANT, USER) == 0  # consistent again: nothing left to find
    assert store.list_user_sessions(TENANT, USER) == []
    assert store.validate(TENANT, neighbour) is not None
