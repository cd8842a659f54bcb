"""Throwaway redis-server processes on free loopback ports, for fault, durability and soak tests.

Each RedisProcess is one process this code started: it is paused, crashed or stopped by its
own pid, never by name, so the shared Redis on 6379 and other people's servers are safe.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import redis

from tests import backends

NO_PERSISTENCE = ("--save", "", "--appendonly", "no")
AOF_ALWAYS = ("--save", "", "--appendonly", "yes", "--appendfsync", "always")


def free_port() -> int:
    """A port the kernel just handed out on 127.0.0.1 (another process may still race us)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisProcess:
    """One redis-server bound to 127.0.0.1, with its data and log in ``directory``."""

    def __init__(self, directory: Path, *options: str, port: int | None = None) -> None:
        if shutil.which("redis-server") is None:
            backends.unavailable("redis-server is not installed")
        self.directory = directory
        self.options = options or NO_PERSISTENCE
        self.port = port or free_port()
        self.log = directory / "redis.log"
        self._process: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"RedisProcess(port={self.port}, pid={self.pid})"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def start(self) -> RedisProcess:
        """Start (or restart, on the same port and directory) and wait until it answers."""
        command = [
            "redis-server",
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--protected-mode", "yes",
            "--dir", str(self.directory),
            "--logfile", "",
            *self.options,
        ]  # fmt: skip
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        self._wait_until_ready()
        return self

    def client(self, **options: Any) -> redis.Redis:
        """A raw client with short timeouts, for setup and inspection."""
        options = {"socket_timeout": 2, "socket_connect_timeout": 2, **options}
        return redis.Redis(host="127.0.0.1", port=self.port, **options)

    def pause(self) -> None:
        """Freeze the process: connections are accepted by the kernel, nothing is answered."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def crash(self) -> None:
        """SIGKILL: no shutdown save, no goodbye to clients; the port refuses at once."""
        self._signal(signal.SIGKILL)
        self._reap()

    def stop(self) -> None:
        """End the process whatever state it is in (paused ones are woken first)."""
        if self._process is None or self._process.poll() is not None:
            return
        self._signal(signal.SIGCONT)
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.crash()
        self._process = None

    def _signal(self, signum: int) -> None:
        assert self._process is not None and self._process.poll() is None, "not running"
        os.kill(self._process.pid, signum)

    def _reap(self) -> None:
        assert self._process is not None
        self._process.wait(timeout=10)
        self._process = None

    def _wait_until_ready(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        probe = self.client(socket_timeout=0.5, socket_connect_timeout=0.5)
        try:
            while time.monotonic() < deadline:
                assert self._process is not None
                if self._process.poll() is not None:
                    raise RuntimeError(f"redis-server exited: {self.log.read_text()[-2000:]}")
                try:
                    if probe.ping():
                        return
                except redis.BusyLoadingError:
                    pass  # loading its AOF: not ready yet
                except redis.ConnectionError:
                    pass
                time.sleep(0.02)
        finally:
            probe.close()
        self.stop()
        raise RuntimeError(f"redis-server on port {self.port} did not answer in {timeout} s")


def start_server(directory: Path, *options: str, port: int | None = None) -> RedisProcess:
    """Start a server, trying another free port if one was taken between probe and bind."""
    for _attempt in range(5):
        server = RedisProcess(directory, *options, port=port)
        try:
            return server.start()
        except RuntimeError:
            if port is not None:
                raise
    raise RuntimeError("could not start redis-server on a free port")


def wait_for(condition: Any, timeout: float = 10.0, interval: float = 0.05) -> None:
    """Poll ``condition()`` until it is true; fail the test if it never is."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s: {condition}")
        time.sleep(interval)
