"""Helpers for the admin API tests: names, request builders, and real server processes."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from sessionstore import SessionStore, StoreConfig
from tests import backends

TENANT_A = "acme-corp"
TENANT_B = "globex"
TENANT_NONE = "initech"  # never has any data
CLIENT_ADDRESS = ("127.0.0.1", 50000)
REAL_BACKENDS = backends.REAL_BACKENDS


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def admin(tenant: str, path: str) -> str:
    return f"/t/{tenant}/api/v1/admin{path}"


def is_problem(response: httpx.Response, status: int) -> bool:
    body = response.json()
    return (
        response.status_code == status
        and response.headers["content-type"] == "application/problem+json"
        and body["status"] == status
        and {"type", "title", "status", "detail"} <= body.keys()
    )


def typo(key: str, position: int = -1) -> str:
    """The key with the character at ``position`` changed (always to a different one)."""
    position %= len(key)
    replacement = "1" if key[position] == "0" else "0"
    return key[:position] + replacement + key[position + 1 :]


def unused_port() -> int:
    """A loopback port nothing listens on (a Redis that is not there)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- real server processes ------------------------------------------------------------------------

_LISTENING = re.compile(r"Uvicorn running on (http://\S+)")


class ServerProcess:
    """``python -m sessionstore.cli serve`` on a free loopback port; output kept in files."""

    def __init__(self, directory: Path, *args: str) -> None:
        self.stdout_path = directory / "stdout.txt"
        self.stderr_path = directory / "stderr.txt"
        command = [sys.executable, "-m", "sessionstore.cli", "serve", "--port", "0", *args]
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(command, stdout=out, stderr=err)
        self.url = self._wait_for_url()

    def _wait_for_url(self) -> str:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            match = _LISTENING.search(self.stderr)
            if match:
                return match[1]
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"server did not start:\n{self.stderr}")

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text()

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def stop(self) -> int:
        """SIGTERM, as a process manager would; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sessionstore.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )


class Live:
    """A server process on a real Redis, its prefix, and API keys minted by the CLI."""

    def __init__(self, server: ServerProcess, url: str, prefix: str, client: Any) -> None:
        self.server = server
        self.redis_url = url
        self.prefix = prefix
        self.client = client
        self.store = SessionStore(client, config=StoreConfig(prefix=prefix))
        self.http = httpx.Client(base_url=server.url, timeout=10)
        self._keys: dict[str, str] = {}

    def mint(self, tenant: str) -> str:
        """A new key from `sessionstore apikey create`."""
        done = run_cli("apikey", "create", "--tenant", tenant, *self.store_args)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def key(self, tenant: str) -> str:
        """The tenant's key shared by the package's tests (minting takes a process)."""
        if tenant not in self._keys:
            self._keys[tenant] = self.mint(tenant)
        return self._keys[tenant]

    @property
    def store_args(self) -> list[str]:
        return ["--redis-url", self.redis_url, "--prefix", self.prefix]


# -- raw ASGI: what no HTTP client sends, and how much of a body an app pulls --------------------


class Body:
    """An ASGI ``receive`` that hands out ``chunk``-byte pieces of a body of ``total`` bytes
    (of ``data`` when given, else of x) and counts what the app pulled."""

    def __init__(self, total: int, chunk: int = 64 * 1024, data: bytes | None = None) -> None:
        self.total = total
        self.chunk = chunk
        self.data = data
        self.piece = b"x" * chunk
        self.pulled = 0

    async def __call__(self) -> dict[str, Any]:
        if self.pulled >= self.total:
            return {"type": "http.request", "body": b"", "more_body": False}
        if self.data is None:
            piece = self.piece[: self.total - self.pulled]
        else:
            piece = self.data[self.pulled : self.pulled + self.chunk]
        self.pulled += len(piece)
        return {"type": "http.request", "body": piece, "more_body": self.pulled < self.total}


class Answer:
    """An ASGI ``send`` that keeps the answer: status, headers, body."""

    def __init__(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body = b""

    async def __call__(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = {k.decode().lower(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")


async def asgi_call(
    app: Any,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: Body | None = None,
) -> Answer:
    """One request straight into an ASGI app; the path is sent as decoded, ``raw_path``
    percent-encoded, as uvicorn does."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": quote(path, safe="/%!$&'()*+,;=:@~-._").encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (name.lower().encode(), value.encode())
            for name, value in {"host": "testserver", **(headers or {})}.items()
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }
    answer = Answer()
    await app(scope, Body(0) if body is None else body, answer)
    return answer
