"""validate, the hot path, beside the floors of one round trip on the same connection settings.

The floors are a raw EVALSHA of a minimal script that returns the session hash (what any
script-based validate must at least do) and a raw HGETALL of the same hash (no Lua at all).
Both use a client from ``sessionstore._connection``, as the store does, and their runs are
interleaved with the store's. A third, sync only, shows what a touch costs: the EVALSHA calls
the store would send (validate.lua, its keys and arguments, as the core builds them), replayed
raw.

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
    """The validate script's EVALSHA arguments for each token, as the store would send them
    when a touch is due (the only time it runs the script for a live session)."""
    calls = []
    for token in tokens:
        planned = bench.store._core.validate_call(TENANT, token)
        assert planned is not None, "a probe token did not parse"
        call = planned[0]
        calls.append((call.script.sha, len(call.keys), *call.keys, *call.args))
    return calls


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
