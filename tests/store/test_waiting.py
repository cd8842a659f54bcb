"""A thread polls its socket for a reply before it sleeps (_waiting.Poller), within its bound.

These run on socket pairs: what they check (what a poll reads, when it backs off, which sockets
it never touches) does not depend on Redis. test_lanes.py checks the lanes that use it on a
real Redis: a reply slower than the poll, and the socket timeout that still bounds the wait.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator

import pytest

from sessionstore import _waiting
from sessionstore._waiting import MAX_BACKOFF, Poller

BUDGET = 0.001  # seconds: long enough for a reply already in the socket's buffer


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, theirs = socket.socketpair()
    ours.settimeout(0.4)  # as redis-py sets the store's sockets: non-blocking underneath
    with ours, theirs:
        yield ours, theirs


def poller_of(sock: socket.socket) -> Poller:
    poller = Poller.of(sock)
    assert poller is not None
    return poller


def test_a_reply_already_there_is_read_by_the_poll(pair: tuple[socket.socket, ...]) -> None:
    ours, theirs = pair
    theirs.sendall(b"+OK\r\n")
    buffer = bytearray(64)
    assert poller_of(ours).read(buffer, BUDGET) == 5
    assert bytes(buffer[:5]) == b"+OK\r\n"


def test_a_peer_that_closed_reads_as_zero_bytes(pair: tuple[socket.socket, ...]) -> None:
    ours, theirs = pair
    theirs.close()
    assert poller_of(ours).read(bytearray(64), BUDGET) == 0


def test_a_poll_that_finds_nothing_sends_the_next_waits_to_the_kernel(
    pair: tuple[socket.socket, ...],
) -> None:
    ours, theirs = pair
    poller, buffer = poller_of(ours), bytearray(64)
    assert poller.read(buffer, BUDGET) is None
    assert poller.skipping == 2
    theirs.sendall(b"+OK\r\n")
    # The reply is there, but the two waits after a miss do not poll: the kernel's wait reads it.
    assert [poller.read(buffer, BUDGET), poller.read(buffer, BUDGET)] == [None, None]
    assert poller.read(buffer, BUDGET) == 5  # polling again, and it paid: the count starts over
    assert poller.read(buffer, BUDGET) is None
    assert poller.skipping == 2


def test_misses_in_a_row_double_the_skipped_waits_up_to_the_bound(
    pair: tuple[socket.socket, ...],
) -> None:
    poller, buffer = poller_of(pair[0]), bytearray(64)
    skipped = []
    for _ in range(MAX_BACKOFF + 2):
        assert poller.read(buffer, BUDGET) is None  # a poll that finds nothing
        skipped.append(poller.skipping)
        while poller.skipping:
            assert poller.read(buffer, BUDGET) is None
    assert skipped == [2**n for n in range(1, MAX_BACKOFF + 1)] + [1024, 1024]


def test_no_budget_never_polls(pair: tuple[socket.socket, ...]) -> None:
    ours, theirs = pair
    theirs.sendall(b"+OK\r\n")
    poller = poller_of(ours)
    assert poller.read(bytearray(64), 0.0) is None
    assert poller.skipping == 0  # not a miss either


def test_a_socket_that_would_block_is_never_polled(pair: tuple[socket.socket, ...]) -> None:
    ours, _ = pair
    ours.settimeout(None)  # a client made with no socket timeout: a read would block
    assert Poller.of(ours) is None


def test_a_tls_socket_is_never_polled() -> None:
    # Its file holds TLS records, not replies: only the TLS layer may read it.
    context = ssl.create_default_context()
    with socket.socket() as plain:
        plain.settimeout(0.4)
        with context.wrap_socket(
            plain, server_hostname="redis.invalid", do_handshake_on_connect=False
        ) as tls:
            assert Poller.of(tls) is None


def test_while_another_thread_polls_this_one_waits_in_the_kernel(
    pair: tuple[socket.socket, ...],
) -> None:
    ours, theirs = pair
    theirs.sendall(b"+OK\r\n")
    poller, buffer = poller_of(ours), bytearray(64)
    with _waiting._polling:  # as another thread holds it while it polls
        assert poller.read(buffer, BUDGET) is None
    assert poller.skipping == 0  # not a miss: its next wait polls
    assert poller.read(buffer, BUDGET) == 5


def test_a_poll_that_hardly_ran_backs_off_though_it_found_its_reply(
    pair: tuple[socket.socket, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    ours, theirs = pair
    theirs.sendall(b"+OK\r\n")
    poller, buffer = poller_of(ours), bytearray(64)
    # The thread got no CPU while the poll's time passed: other work had the core.
    monkeypatch.setattr(_waiting.time, "thread_time", lambda: 0.0)
    assert poller.read(buffer, BUDGET) == 5
    assert poller.skipping == 2
