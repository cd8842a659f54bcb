"""The embedded server keeps each script compiled (_embedded.py), and nothing else changes.

These run on the embedded server alone: what they check is how it runs scripts. The whole
suite's ``fake`` backend runs the store's own scripts on it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis

from sessionstore import SessionStore, StoreConfig, _embedded


@pytest.fixture
def server() -> Any:
    return _embedded.new_server()


@pytest.fixture
def client(server: Any) -> Iterator[Any]:
    with _embedded.package().FakeRedis(server=server) as client:
        yield client


def compiles(server: Any, monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The script texts the server's Lua runtime compiles from now on."""
    runtime = server._lua_runtime._runtime
    compiled: list[bytes] = []

    class Counting:
        def __getattr__(self, name: str) -> Any:
            return getattr(runtime, name)

        def compile(self, code: bytes) -> Any:
            compiled.append(code)
            return runtime.compile(code)

    monkeypatch.setattr(server._lua_runtime, "_runtime", Counting())
    return compiled


def test_a_script_is_compiled_once_and_reads_each_calls_keys_and_arguments(
    server: Any, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = "return {KEYS[1], ARGV[1], redis.call('INCR', KEYS[1])}"
    client.eval("return 1", 0)  # the runtime is made at the first script
    compiled = compiles(server, monkeypatch)
    assert client.eval(script, 1, "k", "first") == [b"k", b"first", 1]
    assert client.eval(script, 1, "k", "second") == [b"k", b"second", 2]
    sha = client.script_load(script)
    assert client.evalsha(sha, 1, "other", "third") == [b"other", b"third", 1]
    assert compiled == [script.encode()]


def test_a_kept_script_starts_each_run_with_fresh_locals(client: Any) -> None:
    script = "local runs = (runs or 0) + 1 return runs"
    assert [client.eval(script, 0) for _ in range(3)] == [1, 1, 1]


def test_a_script_that_sets_a_global_is_still_refused_every_time(client: Any) -> None:
    for _ in range(2):
        with pytest.raises(redis.ResponseError, match="global"):
            client.eval("leaked = 1 return 1", 0)
    assert client.eval("return leaked", 0) is None  # and the global did not stay


def test_a_script_that_does_not_compile_is_an_error_and_the_next_runs(client: Any) -> None:
    with pytest.raises(redis.ResponseError):
        client.eval("return (", 0)
    assert client.eval("return 7", 0) == 7


def test_the_server_keeps_at_most_its_bound_of_compiled_scripts(
    server: Any, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_embedded, "COMPILED", 4)
    for number in range(10):
        assert client.eval(f"return {number}", 0) == number
    assert len(server._lua_runtime._compiled) == 4
    compiled = compiles(server, monkeypatch)
    assert client.eval("return 9", 0) == 9  # among the newest: kept
    assert client.eval("return 0", 0) == 0  # the oldest: dropped, compiled again
    assert compiled == [b"return 0"]


def test_every_store_without_a_url_shares_one_server() -> None:
    config = StoreConfig(prefix="embedded-shared")
    with (
        SessionStore.from_url(None, config=config) as one,
        SessionStore.from_url(None, config=config) as two,
    ):
        session, token = one.create("acme-corp", 1, ip_address="198.51.100.7", user_agent="x")
        validated = two.validate("acme-corp", token)
        assert validated is not None and validated.id == session.id
        one.revoke("acme-corp", 1, session.id)
