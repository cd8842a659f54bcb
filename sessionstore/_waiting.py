"""How a thread waits for its reply on a kept connection: it polls the socket, then sleeps.

A reply from a Redis on the same host or rack comes within tens of microseconds, about what
it costs to park a thread in the kernel and wake it again. So a thread first reads its socket
without blocking, for at most ``busy_poll`` (StoreConfig), and only then waits in the kernel
with the socket's timeout, as redis-py does.

Off by default (``StoreConfig.busy_poll``), because it pays only where a core is idle. On the
benchmark machine (2 cores, Redis beside the app; benchmarks/RESULTS.md, "load by id"), with
50 µs: one thread's validates went 1.42x as fast for about the same CPU a call; but with a
CPU-bound process on the other core they went 0.7x as fast (11.8k/s against 16.6k/s off), and
from 8 threads beside it 0.8x: the polling thread holds a core that Redis needs.

Bound: at most one thread of a process polls at a time; the others wait in the kernel, so
polling never takes more than one core, and threads do not queue for the GIL to poll. A wait
spends at most ``busy_poll`` polling. A poll that ends with no reply (a loaded machine, a slow
command, a distant Redis) sends the thread straight to the kernel for its next 2, 4, ... up to
1,024 waits, and a poll that finds its reply starts that count over. So where polling pays, it
costs at most ``busy_poll`` a wait; where it never pays, at most ``busy_poll`` per 1,024 waits.
A poll during which the thread ran for less than half the time (other threads or processes
had the core) backs off alike, though it found its reply: on a machine with no idle core,
polling takes CPU that other work needs. The socket timeout still bounds the wait in the
kernel, so a call waits at most ``busy_poll`` more than it would without polling.

The wait in the kernel is one system call. A Python socket with a timeout polls before each
send and each receive, two more calls a round trip (about 4% of a validate's time here). So a
kept connection's plain socket hands its timeout to the kernel (``wait_in_kernel``): it blocks,
and SO_RCVTIMEO and SO_SNDTIMEO bound each send and receive by the same timeout; a wait they
end raises BlockingIOError. The poll reads such a socket with MSG_DONTWAIT, so it never
blocks. A TLS socket, or any other wrapper, keeps Python's timeout and is never polled: its
bytes must go through its layer.
"""

from __future__ import annotations

import os
import socket
import struct
import sys
import threading
import time
from typing import Any

MAX_BACKOFF = 10  # after misses in a row, the waits skipped reach 2**MAX_BACKOFF (1,024)

_DONT_WAIT = getattr(socket, "MSG_DONTWAIT", 0)  # 0: not on this platform, never poll
_polling = threading.Lock()  # held by the one thread of the process that polls


def _forget_polling_in_child() -> None:
    global _polling
    _DONT_WAIT = getattr(socket, "MSG_DONTWAIT", 0)  # 0: not on this platform, never poll


_polling = threading.Lock()  # a thread that held it at the fork does not exist here


os.register_at_fork(after_in_child=_forget_polling_in_child)


def wait_in_kernel(sock: Any) -> bool:
    """Bound a plain socket's waits by the kernel's timeouts instead of Python's (its poll
    before each send and receive), with the same timeout; False leaves the socket as it was.
    A socket with no timeout already blocks; one in non-blocking mode (0) is left alone."""
    if type(sock) is not socket.socket or not sys.platform.startswith("linux"):
        return False  # a wrapper reads through its layer; elsewhere timeval's shape differs
    timeout = sock.gettimeout()
    if timeout is None:
        return True
    if timeout <= 0:
        return False
    whole, fraction = divmod(timeout, 1)
    # At least a microsecond: a zero timeval means no timeout at all.
    timeval = struct.pack("@ll", int(whole), max(int(fraction * 1e6), 0 if whole else 1))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)
    sock.settimeout(None)
    return True


class Poller:
    """One connection's polling, with its back-off; a thread's own, so it takes no lock."""

    __slots__ = ("_misses", "_receive", "_skips")

    def __init__(self, sock: socket.socket) -> None:
        self._receive = sock.recv_into
        self._misses = 0  # polls in a row that found no reply
        self._skips = 0  # waits left that go straight to the kernel

    @classmethod
    def of(cls, sock: Any) -> Poller | None:
        """A poller for ``sock``, or None when it cannot be read without blocking."""
        if type(sock) is not socket.socket:  # TLS, or another wrapper: its file is not replies
            return None
        # Python polls a socket with a timeout before it reads: that poll would block.
        return cls(sock) if _DONT_WAIT and not sock.gettimeout() else None

    @property
    def skipping(self) -> int:
        """Waits left that will not poll (back-off after a poll that found nothing)."""
        return self._skips

    def read(self, buffer: bytearray, budget: float) -> int | None:
        """Bytes the socket had for ``buffer`` within ``budget`` seconds of polling (0: the
        peer closed), or None: wait in the kernel."""
        if budget <= 0:
            return None
        if self._skips:
            self._skips -= 1
            return None
        polling = _polling
        if not polling.acquire(blocking=False):
            return None  # another thread polls: this one sleeps (not a miss of its own)
        try:
            started, ran_from = time.perf_counter(), time.thread_time()
            received = self._poll(buffer, started + budget)
            crowded = time.thread_time() - ran_from < (time.perf_counter() - started) / 2
        finally:
            polling.release()
        if received is None or crowded:
            self._misses = min(self._misses + 1, MAX_BACKOFF)
            self._skips = 1 << self._misses
        else:
            self._misses = 0
        return received

    def _poll(self, buffer: bytearray, deadline: float) -> int | None:
        receive = self._receive
        while True:
            try:
                return receive(buffer, 0, _DONT_WAIT)
            except BlockingIOError:
                if time.perf_counter() >= deadline:
                    return None
