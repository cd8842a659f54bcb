"""validate, the hot path, beside the floors of one round trip on the same connection settings.

The floors are a raw EVALSHA of a minimal script that returns the session hash (what any
script-based validate must at least do) and a raw HGETALL of the same hash (no Lua at all).
Both use a client from ``sessionstore._connection``, as the store does, and their runs are
interleaved with the store's. A third, sync only, splits the store's cost in two: the very
EVALSHA calls the store sent (validate.lua, its keys and arguments, recorded once), replayed
raw, so the gap to the store is Python and the gap to the minimal script is Lua.

The store is warmed first: every probe is validated once, so its process knows the sessions
(at most ``sessionstore._core.FIXED_PARTS`` probes, or they would all miss) and the timed
validations take the fast path (two plain reads in one round trip) until a touch falls due,
once per session per touch interval, as in a running service.
"""

from __future__ import annotations

import asyncio
import hashlib
from itertools import cycle
from typing import Any

from redis.exceptions import NoScriptError

from sessionstore import SessionStore
from sessionstore._core import scripts
from sessionstore._core.operations import FIXED_PARTS

from ..bench import Bench
from ..workload import TENANT

MINIMAL_SCRIPT = b"return redis.call('HGETALL', KEYS[1])"
MINIMAL_SHA = hashlib.sha1(MINIMAL_SCRIPT, usedforsecurity=False).hexdigest()
SOURCES = {MINIMAL_SHA: MINIMAL_SCRIPT} | {script.sha: script.source for script in scripts.ALL}


def run(bench: Bench) -> dict[str, Any]:
    probes = bench.probes[:FIXED_PARTS]
    tokens = [token for _, token in probes]
    keys = [bench.keys.session(TENANT, session.id) for session, _ in probes]
    # A benchmark of the miss path would flatter the store: make sure the tokens validate.
    for token in tokens:  # and warm the store, as a running service is
        if bench.store.validate(TENANT, token) is None:
            raise RuntimeError("probe token does not validate: the benchmark data is wrong")
    return {
        "sync": _sync(bench, tokens, keys),
        "async": asyncio.run(_async(bench, tokens, keys)),
    }


def _sync(bench: Bench, tokens: list[str], keys: list[str]) -> dict[str, Any]:
    store, raw = bench.store, bench.raw_client()
    next_token, next_key = cycle(tokens).__next__, cycle(keys).__next__
    next_store_call = cycle(_store_script_calls(bench, tokens)).__next__
    try:
        return bench.compare(
            "validate sync, 1 connection",
            {
                "store": lambda: store.validate(TENANT, next_token()),
                "raw_evalsha": lambda: _evalsha(raw, MINIMAL_SHA, 1, next_key()),
                "raw_hgetall": lambda: raw.hgetall(next_key()),
                "raw_evalsha_of_validate_lua": lambda: _evalsha(raw, *next_store_call()),
            },
            bench.plan.steady,
        )
    finally:
        raw.close()


def _store_script_calls(bench: Bench, tokens: list[str]) -> list[tuple[Any, ...]]:
    recorder = _EvalshaRecorder(bench.raw_client())
    store = SessionStore(recorder, config=bench.config)
    for token in tokens:
        store.validate(TENANT, token)
    recorder.close()
    return recorder.calls


class _EvalshaRecorder:
    """A client that notes the arguments of every EVALSHA it passes on."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: list[tuple[Any, ...]] = []

    def evalsha(self, *args: Any) -> Any:
        self.calls.append(args)
        return self._client.evalsha(*args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


async def _async(bench: Bench, tokens: list[str], keys: list[str]) -> dict[str, Any]:
    store, raw = bench.async_store(), bench.raw_async_client()
    next_token, next_key = cycle(tokens).__next__, cycle(keys).__next__
    try:
        for token in tokens:  # warm, as the sync store
            await store.validate(TENANT, token)
        return await bench.compare_concurrent(
            f"validate async, {bench.plan.concurrency} tasks",
            {
                "store": lambda: store.validate(TENANT, next_token()),
                "raw_evalsha": lambda: _async_evalsha(raw, MINIMAL_SHA, 1, next_key()),
                "raw_hgetall": lambda: raw.hgetall(next_key()),
            },
            bench.plan.steady,
        )
    finally:
        await store.aclose()
        await raw.aclose()


# The floors load their script when Redis has lost it (restart, another client's SCRIPT
# FLUSH), as the store does; the happy path costs them nothing more than EVALSHA.


def _evalsha(client: Any, sha: str, *args: Any) -> Any:
    try:
        return client.evalsha(sha, *args)
    except NoScriptError:
        client.script_load(SOURCES[sha])
        return client.evalsha(sha, *args)


async def _async_evalsha(client: Any, sha: str, *args: Any) -> Any:
    try:
        return await client.evalsha(sha, *args)
    except NoScriptError:
        await client.script_load(SOURCES[sha])
        return await client.evalsha(sha, *args)
