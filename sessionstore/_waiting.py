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

Only a plain socket whose file is in non-blocking mode is polled (Python's sockets with a
timeout are, as the store's are), so a read never blocks. A TLS socket, or any other wrapper,
never is: its bytes must go through its layer.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any

MAX_BACKOFF = 10  # after misses in a row, the waits skipped reach 2**MAX_BACKOFF (1,024)

_polling = threading.Lock()  # held by the one thread of the process that polls


def _forget_polling_in_child() -> None:
    global _polling
    _polling = threading.Lock()  # a thread that held it at the fork does not exist here


os.register_at_fork(after_in_child=_forget_polling_in_child)


class Poller:
    """One connection's polling, with its back-off; a thread's own, so it takes no lock."""

    __slots__ = ("_fd", "_misses", "_skips")

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._misses = 0  # polls in a row that found no reply
        self._skips = 0  # waits left that go straight to the kernel

    @classmethod
    def of(cls, sock: Any) -> Poller | None:
        """A poller for ``sock``, or None when it cannot be read without blocking."""
        if type(sock) is not socket.socket:  # TLS, or another wrapper: its file is not replies
            return None
        fd = sock.fileno()
        return None if os.get_blocking(fd) else cls(fd)

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
            received = self._poll([buffer], started + budget)
            crowded = time.thread_time() - ran_from < (time.perf_counter() - started) / 2
        finally:
            polling.release()
        if received is None or crowded:
            self._misses = min(self._misses + 1, MAX_BACKOFF)
            self._skips = 1 << self._misses
        else:
            self._misses = 0
        return received

    def _poll(self, chunks: list[bytearray], deadline: float) -> int | None:
        fd = self._fd
        while True:
            try:
                return os.readv(fd, chunks)
            except BlockingIOError:
                if time.perf_counter() >= deadline:
                    return None
