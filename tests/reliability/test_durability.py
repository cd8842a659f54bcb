"""What a confirmed revocation survives: a crash (AOF fsync always) and a failover (WAIT).

See docs/persistence.md for what each persistence mode promises.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from sessionstore import (
    AsyncSessionStore,
    RevocationNotDurable,
    SessionStore,
    StoreConfig,
    StoreUnavailable,
)
from tests.reliability.servers import NO_PERSISTENCE, RedisProcess, start_server, wait_for

TENANT = "acme-corp"

pytestmark = pytest.mark.slow


def new_session(store: SessionStore, user_id: int = 1) -> tuple[Any, str]:
    return store.create(TENANT, user_id, ip_address="203.0.113.9", user_agent="pytest")


def test_a_revocation_survives_kill_9_with_appendfsync_always(
    aof_server: RedisProcess, prefix: str, measure: Callable[[str, float], None]
) -> None:
    config = StoreConfig(prefix=prefix)
    with SessionStore.from_url(aof_server.url, config=config) as store:
        live, live_token = new_session(store)
        revoked, revoked_token = new_session(store)
        gone_tokens = [new_session(store, user_id=2)[1] for _ in range(3)]
        assert store.revoke(TENANT, 1, revoked.id)
        assert store.revoke_all(TENANT, 2) == 3

    aof_server.crash()
    started = time.monotonic()
    aof_server.start()
    measure("AOF restart until PING", time.monotonic() - started)

    with SessionStore.from_url(aof_server.url, config=config) as store:
        assert store.validate(TENANT, revoked_token) is None
        assert all(store.validate(TENANT, token) is None for token in gone_tokens)
        validated = store.validate(TENANT, live_token)
        assert validated is not None and validated.id == live.id


# -- replication --------------------------------------------------------------------------


def replica_of(primary: RedisProcess, directory: Path) -> RedisProcess:
    with primary.client() as admin:
        # Full sync at once, rather than after the default 5 s wait for more replicas.
        admin.config_set("repl-diskless-sync-delay", 0)
    replica = start_server(
        directory, *NO_PERSISTENCE, "--replicaof", "127.0.0.1", str(primary.port)
    )
    with primary.client() as admin:
        # Ready when the replica acknowledges a write (it may still be loading when "online").
        admin.set("replication-probe", 1, px=60_000)
        wait_for(lambda: admin.execute_command("WAIT", 1, 100) >= 1)
    return replica


@pytest.fixture
def primary(redis_server: RedisProcess) -> RedisProcess:
    return redis_server


@pytest.fixture
def replica(primary: RedisProcess, tmp_path: Path) -> Iterator[RedisProcess]:
    server = replica_of(primary, tmp_path / "replica")
    yield server
    server.stop()


def durable_config(prefix: str) -> StoreConfig:
    return StoreConfig(
        prefix=prefix, revoke_replicas=1, revoke_replica_timeout=timedelta(milliseconds=200)
    )


def test_a_confirmed_revocation_is_on_the_replica(
    primary: RedisProcess, replica: RedisProcess, prefix: str
) -> None:
    with SessionStore.from_url(primary.url, config=durable_config(prefix)) as store:
        session, _ = new_session(store)
        others = [new_session(store, user_id=2)[0] for _ in range(2)]
        assert store.revoke(TENANT, 1, session.id)
        assert store.revoke_all(TENANT, 2) == 2
        session_keys = [store._core.keys.session(TENANT, s.id) for s in (session, *others)]
    # WAIT returned 1: the replica has applied the revocations, not merely received them.
    with replica.client() as on_replica:
        assert on_replica.exists(*session_keys) == 0


def test_an_unconfirmed_revocation_raises(
    primary: RedisProcess,
    replica: RedisProcess,
    prefix: str,
    measure: Callable[[str, float], None],
) -> None:
    with SessionStore.from_url(primary.url, config=durable_config(prefix)) as store:
        session, token = new_session(store)
        others = [new_session(store, user_id=2)[1] for _ in range(2)]
        replica.pause()
        started = time.monotonic()
        with pytest.raises(RevocationNotDurable):
            store.revoke(TENANT, 1, session.id)
        measure("revoke with a hung replica", time.monotonic() - started)
        with pytest.raises(RevocationNotDurable):
            store.revoke_all(TENANT, 2)
        # Applied on the primary all the same: nobody validates there any more.
        assert store.validate(TENANT, token) is None
        assert all(store.validate(TENANT, other) is None for other in others)
        # A retry elsewhere (another worker) finds nothing to delete, yet must not report
        # the earlier revocation as confirmed while the replica still lacks it.
        with SessionStore.from_url(primary.url, config=durable_config(prefix)) as elsewhere:
            with pytest.raises(RevocationNotDurable):
                elsewhere.revoke(TENANT, 1, session.id)
        replica.resume()
    assert issubclass(RevocationNotDurable, StoreUnavailable)  # the middleware answers 503


async def test_an_unconfirmed_revocation_raises_async(
    primary: RedisProcess, replica: RedisProcess, prefix: str
) -> None:
    store = AsyncSessionStore.from_url(primary.url, config=durable_config(prefix))
    confirmed, _ = await store.create(TENANT, 1, ip_address="203.0.113.9", user_agent="pytest")
    unconfirmed, _ = await store.create(TENANT, 1, ip_address="203.0.113.9", user_agent="pytest")
    assert await store.revoke(TENANT, 1, confirmed.id)
    replica.pause()
    with pytest.raises(RevocationNotDurable):
        await store.revoke(TENANT, 1, unconfirmed.id)
    replica.resume()
    await store.aclose()


def test_no_confirmed_revocation_comes_back_after_failover(
    primary: RedisProcess,
    replica: RedisProcess,
    prefix: str,
    record_property: Callable[[str, object], None],
) -> None:
    """Stop the replica, crash the primary, promote the replica: confirmed means confirmed."""
    config = durable_config(prefix)
    with SessionStore.from_url(primary.url, config=config) as store:
        live, live_token = new_session(store)
        confirmed, confirmed_token = new_session(store)
        confirmed_all = [new_session(store, user_id=2)[1] for _ in range(2)]
        unconfirmed, unconfirmed_token = new_session(store)
        assert store.revoke(TENANT, 1, confirmed.id)
        assert store.revoke_all(TENANT, 2) == 2

        replica.pause()
        with pytest.raises(RevocationNotDurable):
            store.revoke(TENANT, 1, unconfirmed.id)

    primary.crash()
    replica.resume()
    with replica.client() as promote:
        promote.execute_command("REPLICAOF", "NO", "ONE")
        wait_for(lambda: promote.info("replication")["role"] == "master")

    with SessionStore.from_url(replica.url, config=config) as promoted:
        assert promoted.validate(TENANT, confirmed_token) is None
        assert all(promoted.validate(TENANT, token) is None for token in confirmed_all)
        validated = promoted.validate(TENANT, live_token)
        assert validated is not None and validated.id == live.id
        # Not asserted: the unconfirmed revocation may or may not have reached the replica
        # (a stopped process still receives into its socket buffer). That is what the
        # exception said: no promise either way.
        resurrected = promoted.validate(TENANT, unconfirmed_token) is not None
        record_property("unconfirmed revocation lost in failover", resurrected)
        print(f"[measure] unconfirmed revocation lost in failover: {resurrected}")
