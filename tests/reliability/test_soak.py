"""A short soak (tests/soak.py) on a redis-server of its own: nothing leaks, nothing fails."""

from __future__ import annotations

import pytest

from tests.reliability.servers import RedisProcess
from tests.soak import run_soak

pytestmark = pytest.mark.slow


def test_short_soak_leaves_nothing_behind(redis_server: RedisProcess, prefix: str) -> None:
    result = run_soak(redis_server.url, duration=6, cycles=3, lifetime=2, prefix=prefix)
    print(result.summary())
    assert result.errors == []
    assert sum(result.operations.values()) > 1000
    assert result.keys_without_ttl == []
    assert result.leftover_keys == []
    assert result.memory_flat, result.summary()
