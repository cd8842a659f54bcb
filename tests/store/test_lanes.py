"""Each thread keeps its own connection for the store's plain-read batches (_connection.Lanes);
the async store's batches share one pipelined connection instead (test_pipelined.py).

Only a standalone redis-py client sends batches this way (a cluster pipelines per node, the
embedded server is in process), so these tests run on the real Redis, with the store's own
client (the store's from_url), and check each way a kept connection could go wrong: shared
between threads, past its bound, left open after its thread, broken by the server, holding an
unread reply after an interrupted call, or used across a fork; and the poll for a reply before
the thread sleeps (_waiting.py): a reply slower than the poll, a wait the socket timeout ends,
a store that turned it off.
"""

from __future__ import annotations

import gc
import multiprocessing
import socket
import struct
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis
import redis.asyncio.connection

from sessionstore import SessionStore, StoreConfig, _connection, _waiting
from tests import backends

pytestmark = pytest.mark.parametrize("backend", backends.ONE_BACKEND, indirect=True)

TENANT = "acme-corp"
BUSY_POLL = 50e-6  # seconds: the figure the README suggests


@pytest.fixture
def store(backend: str, prefix: str) -> Iterator[SessionStore]:
    with SessionStore.from_url(backends.url_for(backend), config=StoreConfig(prefix=prefix)) as s:
        yield s
        backends.delete_prefix(s.client, prefix)


def logins(store: SessionStore, count: int) -> list[tuple[Any, str]]:
    return [
        store.create(TENANT, user, ip_address="198.51.100.7", user_agent="pytest")
        for user in range(1, count + 1)
    ]


def lanes_of(store: SessionStore) -> _connection.Lanes:
    return _connection._lanes[store.client.connection_pool]


def server_id(connection: Any) -> int:
    """The id Redis gave this connection (CLIENT ID, asked on it)."""
    connection.send_command("CLIENT", "ID")
    return int(connection.read_response())


def validates_all(store: SessionStore, made: list[tuple[Any, str]]) -> bool:
    return all(store.validate(TENANT, token).id == session.id for session, token in made)


def test_a_thread_keeps_one_connection_and_borrows_none(
    store: SessionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = logins(store, 5)
    assert validates_all(store, made)  # the first read of each session
    pool = store.client.connection_pool
    borrowed: list[object] = []
    borrow = pool.get_connection

    def counted(*args: Any, **kwargs: Any) -> Any:
        borrowed.append(args)
        return borrow(*args, **kwargs)

    monkeypatch.setattr(pool, "get_connection", counted)
    for _ in range(20):
        assert validates_all(store, made)
    assert borrowed == [] and len(lanes_of(store)) == 1


def test_threads_never_share_a_connection_and_close_it_when_they_end(
    store: SessionStore,
) -> None:
    made = logins(store, 8)
    store.validate(TENANT, made[0][1])
    answers: list[bool] = []
    kept: set[int] = set()

    def work() -> None:
        answers.append(all(validates_all(store, made) for _ in range(30)))
        kept.add(server_id(lanes_of(store)._mine.lane.connection))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [True] * 4 and len(kept) == 4
    del threads
    gc.collect()
    assert len(lanes_of(store)) == 1  # the main thread's
    assert backends.closed_on_the_server(store.client, kept)


def test_past_the_bound_a_thread_borrows_from_the_pool(store: SessionStore) -> None:
    made = logins(store, 4)
    pool = store.client.connection_pool
    _connection._lanes[pool] = _connection.Lanes(pool, limit=2)
    answers: list[bool] = []
    kept_while_all_ran: list[int] = []
    # A thread that fails breaks the barriers (their timeout), so the test fails, never hangs.
    all_started, all_counted = threading.Barrier(5, timeout=30), threading.Barrier(5, timeout=30)

    def work() -> None:
        all_started.wait()  # every thread asks for its first connection at once
        answers.append(all(validates_all(store, made) for _ in range(20)))
        all_counted.wait()  # none has ended yet

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    all_started.wait()
    kept_while_all_ran.append(0)
    deadline = time.monotonic() + 30
    while len(answers) < 4:
        assert time.monotonic() < deadline, "a thread never finished its validations"
        kept_while_all_ran.append(len(lanes_of(store)))
        time.sleep(0.001)
    kept_while_all_ran.append(len(lanes_of(store)))
    all_counted.wait()
    for thread in threads:
        thread.join()
    assert answers == [True] * 4
    assert max(kept_while_all_ran) == 2  # two kept; the other two threads borrowed


def test_a_connection_the_server_closed_is_opened_again(store: SessionStore) -> None:
    made = logins(store, 3)
    assert validates_all(store, made)
    kept = lanes_of(store)._mine.lane.connection
    store.client.client_kill_filter(_id=server_id(kept))
    assert validates_all(store, made)


def test_an_interrupted_call_leaves_no_reply_for_the_next(
    store: SessionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    (first, first_token), (second, second_token) = logins(store, 2)
    assert validates_all(store, [(first, first_token), (second, second_token)])
    read = _connection._Lane.read

    def interrupted(lane: Any, *args: Any) -> Any:
        raise KeyboardInterrupt  # after the batch went out, before its replies were read

    monkeypatch.setattr(_connection._Lane, "read", interrupted)
    with pytest.raises(KeyboardInterrupt):
        store.validate(TENANT, first_token)
    monkeypatch.setattr(_connection._Lane, "read", read)
    assert _connection.run_raw(store.client, [("ECHO", "mine")]) == [b"mine"]  # not a stale one
    assert store.validate(TENANT, second_token).id == second.id


def _validate_in_child(store: SessionStore, token: str, parent: Any, answers: Any) -> None:
    validated = store.validate(TENANT, token) is not None
    answers.put((validated, lanes_of(store)._mine.lane.connection is not parent))


def test_a_forked_child_opens_its_own_connection(store: SessionStore) -> None:
    made = logins(store, 2)
    assert validates_all(store, made)
    parent = lanes_of(store)._mine.lane.connection
    context = multiprocessing.get_context("fork")
    answers = context.Queue()
    child = context.Process(target=_validate_in_child, args=(store, made[1][1], parent, answers))
    child.start()
    child.join(timeout=30)
    assert child.exitcode == 0
    assert answers.get(timeout=5) == (True, True)
    assert lanes_of(store)._mine.lane.connection is parent
    assert validates_all(store, made)  # the parent's connection was not disturbed


def test_closing_the_store_closes_the_kept_connections(backend: str, prefix: str) -> None:
    store = SessionStore.from_url(backends.url_for(backend), config=StoreConfig(prefix=prefix))
    ((_, token),) = logins(store, 1)
    store.validate(TENANT, token)
    kept = server_id(lanes_of(store)._mine.lane.connection)
    checker = redis.Redis.from_url(backends.url_for(backend))
    assert kept in {int(c["id"]) for c in checker.client_list()}
    store.close()
    assert backends.closed_on_the_server(checker, {kept})
    backends.delete_prefix(checker, prefix)
    checker.close()


def test_a_reply_slower_than_the_poll_is_read_in_the_kernel_wait(
    store: SessionStore, prefix: str
) -> None:
    # BLPOP answers after 50 ms, long past the poll: the thread sleeps for it, then backs off.
    slow = [("BLPOP", f"{prefix}:empty", "0.05"), ("ECHO", "after")]
    assert _connection.run_raw(store.client, slow, BUSY_POLL) == [None, b"after"]
    lane = lanes_of(store)._mine.lane
    assert lane._poller is not None and lane._poller.skipping == 2
    assert _connection.run_raw(store.client, [("ECHO", "next")], BUSY_POLL) == [b"next"]


@pytest.mark.parametrize("busy_poll", [0.0, BUSY_POLL], ids=["sleeping", "polling"])
def test_the_socket_timeout_still_ends_a_wait(
    store: SessionStore, prefix: str, busy_poll: float
) -> None:
    made = logins(store, 1)
    assert validates_all(store, made)
    sock = lanes_of(store)._mine.lane._socket
    assert sock.gettimeout() is None  # handed to the kernel, as SO_RCVTIMEO:
    seconds, microseconds = struct.unpack(
        "@ll", sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.calcsize("@ll"))
    )
    assert seconds + microseconds / 1e6 == pytest.approx(_connection.SOCKET_TIMEOUT, abs=0.02)
    # Redis would answer BLPOP after 2 s; the socket timeout ends each try's wait first.
    with pytest.raises(redis.exceptions.TimeoutError):
        _connection.run_raw(store.client, [("BLPOP", f"{prefix}:empty", "2")], busy_poll)
    assert validates_all(store, made)  # on a new connection: the old one held a reply to come


def test_a_store_with_busy_poll_off_the_default_never_polls(
    backend: str, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    polled: list[float] = []
    poll = _waiting.Poller._poll

    def counted(poller: _waiting.Poller, buffer: bytearray, deadline: float) -> int | None:
        polled.append(deadline)
        return poll(poller, buffer, deadline)

    monkeypatch.setattr(_waiting.Poller, "_poll", counted)
    for busy_poll in (StoreConfig().busy_poll, timedelta(microseconds=50)):
        config = StoreConfig(prefix=prefix, busy_poll=busy_poll)
        with SessionStore.from_url(backends.url_for(backend), config=config) as store:
            made = logins(store, 2)
            assert validates_all(store, made) and validates_all(store, made)
            backends.delete_prefix(store.client, prefix)
        if not busy_poll:
            assert polled == []
    assert polled  # one that polls is seen: what was counted above could have been
