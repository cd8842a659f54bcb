"""Fixtures for tests that run their own redis-server (see servers.py) and measure it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.reliability.servers import AOF_ALWAYS, NO_PERSISTENCE, RedisProcess, start_server


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisProcess]:
    """A private redis-server without persistence: free to CONFIG SET, pause or kill."""
    server = start_server(tmp_path / "redis", *NO_PERSISTENCE)
    yield server
    server.stop()


@pytest.fixture
def aof_server(tmp_path: Path) -> Iterator[RedisProcess]:
    """A private redis-server that fsyncs its AOF on every write: survives kill -9."""
    server = start_server(tmp_path / "redis", *AOF_ALWAYS)
    yield server
    server.stop()


@pytest.fixture
def measure(record_property: Callable[[str, object], None]) -> Callable[[str, float], None]:
    """Record a measured figure in the JUnit XML and the captured output (never asserted)."""

    def record(name: str, seconds: float) -> None:
        record_property(name, f"{seconds:.3f}")
        print(f"[measure] {name}: {seconds * 1000:.1f} ms")

    return record
