"""Fixtures for webhooks: a store recording events, a real HTTP receiver on loopback, and
deliverers (each on its own Redis client, as separate processes would be)."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import fakeredis
import pytest

from sessionstore import AsyncSessionStore, StoreConfig, aio
from sessionstore._core import operations
from sessionstore.webhooks.delivery import Deliverer
from sessionstore.webhooks.registry import Webhooks
from tests import backends
from tests.webhooks.helpers import FAST
from tests.webhooks.receiver import Receiver


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Whatever the code under test decides, no test connects beyond loopback: a socket asked
    to connect anywhere else is refused here, and so is a name lookup (the system's resolver
    is not on loopback); what was tried fails the test. Tests give deliverers resolvers that
    answer private and metadata addresses on purpose, and those must never be reached."""
    tried: list[str] = []
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name is not None and name != "localhost":
            try:
                ipaddress.ip_address(str(name).split("%", 1)[0])
            except ValueError:
                tried.append(f"lookup of {name!r}")
                raise socket.gaierror(socket.EAI_NONAME, "tests look up no names") from None
        return real_getaddrinfo(host, *args, **kwargs)

    def check(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            host = str(address[0]).split("%", 1)[0]
            if not ipaddress.ip_address(host).is_loopback:
                tried.append(host)
                raise ConnectionRefusedError(f"tests connect to loopback only, not {host}")

    def connect(sock: socket.socket, address: Any) -> None:
        check(sock, address)
        real_connect(sock, address)

    def connect_ex(sock: socket.socket, address: Any) -> int:
        check(sock, address)
        return real_connect_ex(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield tried
    assert tried == [], f"a test tried to reach beyond loopback: {tried}"


@pytest.fixture(autouse=True)
def guard_run_script_slots(monkeypatch: pytest.MonkeyPatch, guard_script_slots: None) -> None:
    """The store's ``run_script`` (how registration runs its script) is held to the rule
    tests/conftest.py holds the core's script calls to: keys of exactly one cluster slot."""
    monkeypatch.setattr(aio, "ScriptCall", operations.ScriptCall)


@pytest.fixture
def clock() -> backends.Clock:
    """The store's clock, a minute behind the real one: the tests move it a few milliseconds
    per event, and a deliverer on the real clock must never see events from its future (it
    waits for those to settle)."""
    clock = backends.Clock()
    clock.advance(-60)
    return clock


@pytest.fixture
def config(prefix: str) -> StoreConfig:
    return StoreConfig(prefix=prefix, events=True)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    await receiver.start()
    yield receiver
    await receiver.close()


@pytest.fixture
def hooks(astore: AsyncSessionStore) -> Webhooks:
    return Webhooks(astore, allow_private=True)


DelivererFactory = Callable[..., Deliverer]


@pytest.fixture
async def deliverers(
    backend: str, config: StoreConfig, fake_server: fakeredis.FakeServer
) -> AsyncIterator[DelivererFactory]:
    """``deliverers(**options)``: a new Deliverer on a client of its own (FAST by default)."""
    stores: list[AsyncSessionStore] = []

    def make(**options: Any) -> Deliverer:
        store = AsyncSessionStore(backends.async_client(backend, fake_server), config=config)
        stores.append(store)
        return Deliverer(store, **{**FAST, **options})

    yield make
    for store in stores:
        await store.aclose()
