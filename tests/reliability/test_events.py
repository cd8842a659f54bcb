"""Events under a Redis that hangs mid-burst: no returned revocation without its event.

A thread revokes sessions one after another while the test SIGSTOPs the private
redis-server for a while and then lets it go on. A revocation that returned True has its
``session.revoked`` event; one that failed (StoreUnavailable: its outcome unknown) is retried
and then has exactly one; no session has an event without its change.
"""

from __future__ import annotations

import threading
import time

import pytest

from sessionstore import SessionStore, StoreConfig, StoreUnavailable
from tests.reliability.servers import RedisProcess

TENANT = "acme-corp"
SESSIONS = 120

pytestmark = pytest.mark.slow


def test_every_revocation_that_returned_has_its_event(
    redis_server: RedisProcess, prefix: str
) -> None:
    config = StoreConfig(prefix=prefix, events=True)
    store = SessionStore.from_url(redis_server.url, config=config)
    made = [
        store.create(TENANT, user, ip_address="203.0.113.7", user_agent="pytest")[0]
        for user in range(SESSIONS)
    ]
    returned: list[str] = []
    failed: list[str] = []

    def burst() -> None:
        for session in made:
            try:
                if store.revoke(TENANT, session.user_id, session.id):
                    returned.append(session.id)
            except StoreUnavailable:
                failed.append(session.id)

    worker = threading.Thread(target=burst)
    worker.start()
    while len(returned) < SESSIONS // 3:
        time.sleep(0.001)
    redis_server.pause()
    time.sleep(1.5)  # longer than the store's timeouts: some calls in the burst fail
    redis_server.resume()
    worker.join(timeout=60)

    for session_id in failed:  # the caller retries what it could not confirm
        session = next(s for s in made if s.id == session_id)
        store.revoke(TENANT, session.user_id, session.id)
    revoked = [event.session_id for event in _all_events(store) if event.type == "session.revoked"]
    assert set(returned) <= set(revoked)
    assert sorted(revoked) == sorted({s.id for s in made})  # each exactly once, none extra
    assert failed, "the pause should have failed some revocations"
    assert all(store.get(TENANT, s.id) is None for s in made)
    store.close()


def _all_events(store: SessionStore) -> list:
    events, cursor = [], None
    while True:
        page = store.events(TENANT, after=cursor, limit=1000)
        events += page.data
        if not page.has_more:
            return events
        cursor = page.next_cursor
