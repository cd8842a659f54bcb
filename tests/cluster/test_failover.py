"""A replica takes over its primary while validations and revocations run.

The store must follow the new topology (MOVED, then NOSCRIPT on the promoted replica), and a
revocation, once acknowledged, must hold: no revoked session validates afterwards. Calls that
meet the switch may raise StoreUnavailable; the traffic retries them, which is safe because
validate and revoke are idempotent.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from redis.crc import key_slot

from sessionstore import (
    AsyncSessionStore,
    InvalidArgument,
    SessionStore,
    StoreConfig,
    StoreUnavailable,
)
from sessionstore._core.keys import KeySpace
from tests.cluster.local import LocalCluster

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

TENANT = "acme-corp"
USERS = 60
RETRY_FOR = 20.0  # seconds an operation may stay unavailable before the test gives up


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    # From 7500 up, test_reshard.py's from 7100: an xdist worker that interleaves the two files
    # may start one's cluster before the other's has stopped.
    with LocalCluster(7500).running() as cluster:
        yield cluster


class Ledger:
    """The traffic's plan (revoke every 7th session once, validate the rest) and what it expects."""

    def __init__(self, logins: list[tuple[int, Any, str]]) -> None:
        self.logins = logins
        self.revoked: set[str] = set()
        self.unavailable = 0
        self._step = 0

    def next(self) -> tuple[str, tuple[int, Any, str]]:
        position = self._step % len(self.logins)
        self._step += 1
        login = self.logins[position]
        revoke = position % 7 == 0 and login[1].id not in self.revoked
        return ("revoke" if revoke else "validate"), login

    def validated(self, session: Any, found: Any) -> None:
        if session.id in self.revoked:
            assert found is None, f"revoked session {session.id} validated"
        else:
            assert found == session


def step(store: SessionStore, ledger: Ledger, *, retry: bool) -> None:
    action, (user, session, token) = ledger.next()
    deadline = time.monotonic() + RETRY_FOR
    while True:
        try:
            if action == "revoke":
                store.revoke(TENANT, user, session.id)
                ledger.revoked.add(session.id)
            else:
                ledger.validated(session, store.validate(TENANT, token))
            return
        except StoreUnavailable:
            if not retry or time.monotonic() > deadline:
                raise
            ledger.unavailable += 1
            time.sleep(0.05)


async def astep(store: AsyncSessionStore, ledger: Ledger, *, retry: bool) -> None:
    action, (user, session, token) = ledger.next()
    deadline = time.monotonic() + RETRY_FOR
    while True:
        try:
            if action == "revoke":
                await store.revoke(TENANT, user, session.id)
                ledger.revoked.add(session.id)
            else:
                ledger.validated(session, await store.validate(TENANT, token))
            return
        except StoreUnavailable:
            if not retry or time.monotonic() > deadline:
                raise
            ledger.unavailable += 1
            await asyncio.sleep(0.05)


def slot_of(config: StoreConfig, session: Any) -> int:
    key = KeySpace(config.prefix, config.tenant_buckets).session(TENANT, session.id)
    return key_slot(key.encode())


def test_revocations_survive_a_failover(cluster: LocalCluster, config: StoreConfig) -> None:
    store = SessionStore.from_url(cluster.url, config=config)
    logins = [
        (user, *store.create(TENANT, user, ip_address="203.0.113.5", user_agent="x"))
        for user in range(USERS)
    ]
    slot = slot_of(config, logins[0][1])
    replica = cluster.replica_of(cluster.owner(slot))
    ledger = Ledger(logins)

    with ThreadPoolExecutor(1) as pool:
        failover = pool.submit(cluster.fail_over, replica)
        while not failover.done():
            step(store, ledger, retry=True)
        failover.result()
    # Operations have resumed: a full round more, and no call may fail even once.
    for _ in range(len(logins)):
        step(store, ledger, retry=False)

    assert cluster.owner(slot).id == replica.id
    assert 0 < len(ledger.revoked) < len(logins)
    for _user, session, token in logins:
        ledger.validated(session, store.validate(TENANT, token))
    store.close()


async def test_the_async_store_follows_a_failover(
    cluster: LocalCluster, config: StoreConfig
) -> None:
    store = AsyncSessionStore.from_url(cluster.url, config=config)
    logins = [
        (user, *await store.create(TENANT, user, ip_address="203.0.113.5", user_agent="x"))
        for user in range(USERS)
    ]
    slot = slot_of(config, logins[-1][1])
    replica = cluster.replica_of(cluster.owner(slot))
    ledger = Ledger(logins)

    failover = asyncio.create_task(asyncio.to_thread(cluster.fail_over, replica))
    while not failover.done():
        await astep(store, ledger, retry=True)
    await failover
    for _ in range(len(logins)):
        await astep(store, ledger, retry=False)

    assert cluster.owner(slot).id == replica.id
    for _user, session, token in logins:
        ledger.validated(session, await store.validate(TENANT, token))
    await store.aclose()


def test_revoke_replicas_is_refused_on_a_cluster(
    cluster: LocalCluster, config: StoreConfig
) -> None:
    # A cluster client cannot run the revocation and its WAIT on one connection, and a WAIT
    # on another connection reports replicas as caught up: refuse rather than mislead.
    with pytest.raises(InvalidArgument):
        AsyncSessionStore.from_url(
            cluster.url, config=dataclasses.replace(config, revoke_replicas=1)
        )
