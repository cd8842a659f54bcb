"""Fixtures: every store test runs once per backend (tests/backends.py), in its own prefix."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import fakeredis
import pytest
from redis.crc import key_slot

from sessionstore import AsyncSessionStore, SessionStore, StoreConfig, _embedded
from sessionstore._core import operations
from tests import backends


@pytest.fixture(params=backends.BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def prefix() -> str:
    return backends.new_prefix()


@pytest.fixture(params=backends.REAL_BACKENDS)
def redis_url(request: pytest.FixtureRequest, prefix: str) -> Iterator[str]:
    """A real backend's URL, for what runs in another process or through the CLI; what the
    test wrote under ``prefix`` is deleted afterwards."""
    client = backends.sync_client(request.param)
    url = backends.url_for(request.param)
    assert url is not None
    yield url
    backends.delete_prefix(client, prefix)
    client.close()


@pytest.fixture
def config(prefix: str) -> StoreConfig:
    return StoreConfig(prefix=prefix)


@pytest.fixture
def clock() -> backends.Clock:
    return backends.Clock()


@pytest.fixture
def fake_server() -> fakeredis.FakeServer:
    return _embedded.new_server()


@pytest.fixture
def client(backend: str, prefix: str, fake_server: fakeredis.FakeServer) -> Iterator[Any]:
    client = backends.sync_client(backend, fake_server)
    yield client
    backends.delete_prefix(client, prefix)
    client.close()


@pytest.fixture
def store(client: Any, config: StoreConfig, clock: backends.Clock) -> SessionStore:
    return SessionStore(client, config=config, clock=clock)


@pytest.fixture
async def astore(
    backend: str,
    client: Any,
    config: StoreConfig,
    clock: backends.Clock,
    fake_server: fakeredis.FakeServer,
) -> AsyncIterator[AsyncSessionStore]:
    # Shares the sync client's server (and prefix), so tests can mix sync and async calls.
    async_store = AsyncSessionStore(
        backends.async_client(backend, fake_server), config=config, clock=clock
    )
    yield async_store
    await async_store.aclose()


class _SlotCheckedCall(operations.ScriptCall):
    """Every script call the store makes must declare keys of exactly one cluster slot."""

    __slots__ = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        slots = {key_slot(key.encode()) for key in self.keys}
        assert len(slots) == 1, f"{self.script.name} declares keys of slots {slots}: {self.keys}"


@pytest.fixture(autouse=True)
def guard_script_slots(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(operations, "ScriptCall", _SlotCheckedCall)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One line for what was skipped and why (a newcomer without a cluster URL skips the
    cluster backend), instead of a line per test."""
    skipped = terminalreporter.stats.get("skipped", [])
    reasons = Counter(
        str(report.longrepr[2]).removeprefix("Skipped: ")
        if isinstance(report.longrepr, tuple)
        else "skipped"
        for report in skipped
    )
    if reasons:
        terminalreporter.write_line(
            "skipped: " + "; ".join(f"{count} ({why})" for why, count in reasons.most_common())
        )
