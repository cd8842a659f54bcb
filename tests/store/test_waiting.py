"""A thread polls its socket for a reply before it sleeps (_waiting.Poller), within its bound.

These run on socket pairs: what they check (what a poll reads, when it backs off, which sockets
it never touches, the kernel's timeouts a lane's socket waits under) does not depend on Redis.
test_lanes.py checks the lanes that use it on a real Redis: a reply slower than the poll, and
the socket timeout that still bounds the wait.
"""

from __future__ import annotations

import socket
import ssl
import struct
from collections.abc import Iterator
from typing import Any

import pytest

from sessionstore import _waiting
from sessionstore._waiting import MAX_BACKOFF, Poller, wait_in_kernel

BUDGET = 0.001  # seconds: long enough for a reply already in the socket's buffer


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, theirs = socket.socketpair()
    ours.settimeout(0.4)  # as redis-py sets the store's sockets
    with ours, theirs:
        assert wait_in_kernel(ours)  # as a lane hands it over
        yield ours, theirs


def kernel_timeouts(sock: socket.socket) -> tuple[float, float]:
    """SO_RCVTIMEO and SO_SNDTIMEO in seconds."""
    return kernel_timeout(sock, socket.SO_RCVTIMEO), kernel_timeout(sock, socket.SO_SNDTIMEO)


def kernel_timeout(sock: socket.socket, option: int) -> float:
    timeval = sock.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("@ll"))
    seconds, microseconds = struct.unpack("@ll", timeval)
    return float(seconds + microseconds / 1e6)


def about(seconds: float) -> Any:
    return pytest.approx(seconds, abs=0.02)  # the kernel rounds up to its tick (4 ms here)


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


def test_a_socket_with_pythons_timeout_is_never_polled(pair: tuple[socket.socket, ...]) -> None:
    ours, _ = pair
    ours.settimeout(0.4)  # not handed over: Python would poll, and wait, before each read
    assert Poller.of(ours) is None


def test_the_kernel_takes_the_same_timeout_for_both_directions() -> None:
    with socket.socket() as sock:
        sock.settimeout(2.25)
        assert wait_in_kernel(sock)
        assert sock.gettimeout() is None  # blocking: no poll before a send or a receive
        assert kernel_timeouts(sock) == (about(2.25), about(2.25))


def test_a_timeout_under_a_microsecond_stays_a_timeout() -> None:
    with socket.socket() as sock:
        sock.settimeout(1e-7)  # a zero timeval would mean none at all
        assert wait_in_kernel(sock)
        assert all(0 < timeout < 0.02 for timeout in kernel_timeouts(sock))


def test_a_socket_without_a_timeout_keeps_none() -> None:
    with socket.socket() as sock:
        assert wait_in_kernel(sock)
        assert sock.gettimeout() is None and kernel_timeouts(sock) == (0.0, 0.0)


def test_the_kernel_timeout_ends_a_receive_with_nothing_to_read() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.settimeout(0.05)
        assert wait_in_kernel(ours)
        with pytest.raises(BlockingIOError):  # the lane's TimeoutError
            ours.recv_into(bytearray(64))


def test_the_kernel_timeout_ends_a_send_the_peer_never_reads() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.settimeout(0.05)
        assert wait_in_kernel(ours)
        with pytest.raises(BlockingIOError):  # both buffers full, nobody reading
            ours.sendall(bytes(64 << 20))


def test_a_tls_socket_is_never_polled() -> None:
    # Its file holds TLS records, not replies: only the TLS layer may read it.
    context = ssl.create_default_context()
    with socket.socket() as plain:
        plain.settimeout(0.4)
        with context.wrap_socket(
            plain, server_hostname="redis.invalid", do_handshake_on_connect=False
        ) as tls:
            assert Poller.of(tls) is None
            assert not wait_in_kernel(tls) and tls.gettimeout() == 0.4


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
