"""Redis memory per session, every index included, beside a plain msgpack blob per session.

The sessions are the issue's mix (workload.memory_mix): about 3 per user, 70% from the user's
own IP address and 30% from 100 shared ones, browsers' user agents of 120 bytes, on Redis's
default config. Both figures are INFO memory ``used_memory`` deltas over the same sessions:
first written by the store (the session hash ``s``, the user index ``u``, the bucket indexes
``t``, ``i`` and ``x``, the prefix's ``layout`` key), then deleted, then written as one
``SET key <msgpack> PXAT expiry`` each with no index at all. The blob holds the same fields,
the user agent whole and the 32-byte secret hash: the smallest way to keep the same session.
MEMORY USAGE of every key, by kind, shows where the bytes go; unlike used_memory it is not
moved by other clients of a shared server (but it leaves out the expiry entry of each key).

The store writes the idle index ``x`` only with an idle timeout; a second pass with
``idle_timeout`` set measures what that costs.

A process keeps the fixed parts of the sessions it validated (``_core/fixed.py``, at most
``FIXED_PARTS`` of them): their bytes per session are what tracemalloc counts a new store
allocating while it validates ``REMEMBERED`` of the mix twice (the second read keeps the reply
the hot path compares), after one validation that made its connection.
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from collections.abc import Iterable
from datetime import timedelta
from itertools import islice
from typing import Any

import msgpack
import redis

from sessionstore import SessionStore
from sessionstore._core.codec import session_fields
from sessionstore.model import Session

from ..bench import Bench
from ..bulk import create_many, delete_matching
from ..workload import (
    MIX_AGENT_BYTES,
    MIX_SESSIONS_PER_USER,
    MIX_SHARED_IPS,
    MIX_SHARED_SHARE,
    memory_mix,
)

STORE_TENANT = "mem-hash"
BLOB_TENANT = "mem-blob"  # as long as STORE_TENANT, so both keys cost the same bytes
REMEMBERED = 2_000  # sessions a new store validates for the process memory it keeps
IDLE_TIMEOUT = timedelta(minutes=30)
IDLE_LABEL = "idle_timeout=30 min"
# The kinds of key the store writes (the table in keys.py), in the order they are reported.
KINDS = {
    "s": "session hash",
    "u": "user index u",
    "t": "created index t",
    "i": "ip index i",
    "x": "idle index x",
    "layout": "layout",
}


def run(bench: Bench) -> dict[str, Any]:
    if not bench.backend.real:
        return {}  # the embedded server keeps no memory accounting (no INFO)
    count = bench.plan.memory_sessions
    client = bench.client
    # The first pass also writes the prefix's layout key: a store's first operation does.
    blobs: list[tuple[str, bytes]] = []
    store = _measure_store(bench, bench.store, "writing sessions with the store", blobs)
    idle = _measure_store(
        bench,
        bench.store_with(idle_timeout=IDLE_TIMEOUT),
        f"writing sessions with {IDLE_LABEL}",
    )

    remembered = _remembered_bytes(bench)

    before = _used_memory(client)
    _write_blobs(bench, blobs)
    blob_bytes = _used_memory(client) - before
    blob_usage = _memory_usage(client, (bench.keys.session(BLOB_TENANT, sid) for sid, _ in blobs))
    delete_matching(client, bench.tenant_pattern(BLOB_TENANT))

    results = {
        "sessions": count,
        "mix": {
            "sessions_per_user": sum(MIX_SESSIONS_PER_USER) / len(MIX_SESSIONS_PER_USER),
            "shared_ips": MIX_SHARED_IPS,
            "shared_ip_share": MIX_SHARED_SHARE,
            "user_agent_bytes": MIX_AGENT_BYTES,
            "users": store.pop("users"),
            "ip_addresses": store.pop("ip_addresses"),
        },
        "redis_config": _redis_config(client),
        **store,
        "blob_bytes_per_session": blob_bytes / count,
        "blob_payload_bytes": sum(len(blob) for _, blob in blobs) / count,
        "blob_memory_usage_per_session": sum(blob_usage) / count,
        "process_bytes_per_remembered_session": remembered,
        "idle_timeout": IDLE_LABEL,
        "with_idle_timeout": {
            key: value for key, value in idle.items() if key not in ("users", "ip_addresses")
        },
    }
    progress = bench.progress
    progress.result(
        "memory per session: store (every index)", f"{results['store_bytes_per_session']:,.0f} B"
    )
    for kind, usage in results["memory_usage_per_session"].items():
        encoding = results["encodings"].get(kind)
        progress.result(
            f"  MEMORY USAGE {kind} ({usage['keys']:,} keys{f', {encoding}' if encoding else ''})",
            f"{usage['bytes_per_session']:,.1f} B per session ({usage['bytes']:,} B)",
        )
    progress.result(
        f"memory per session: store with {IDLE_LABEL}",
        f"{idle['store_bytes_per_session']:,.0f} B",
    )
    progress.result(
        "memory per session: plain msgpack blob", f"{results['blob_bytes_per_session']:,.0f} B"
    )
    progress.result("process memory per remembered session (fixed parts)", f"{remembered:,.0f} B")
    return results


def _remembered_bytes(bench: Bench) -> float:
    """What a process holds per session it validated: its fixed parts (``_core/fixed.py``)."""
    sessions = create_many(bench.store, memory_mix(REMEMBERED, STORE_TENANT), keep=True)
    tokens = [token for _, token in sessions]
    del sessions
    store = bench.store_with()  # a new store remembers nothing yet
    store.validate(STORE_TENANT, tokens[0])  # its connection, and the prefix's layout
    gc.collect()
    tracemalloc.start()
    try:
        for token in tokens[1:] * 2:
            if store.validate(STORE_TENANT, token) is None:
                raise RuntimeError("a session of the mix does not validate")
        gc.collect()
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    delete_matching(bench.client, bench.tenant_pattern(STORE_TENANT))
    return held / (len(tokens) - 1)


def _measure_store(
    bench: Bench, store: SessionStore, title: str, blobs: list[tuple[str, bytes]] | None = None
) -> dict[str, Any]:
    """Write the mix with ``store``, measure it, delete it; ``blobs`` gets the same sessions."""
    count, client = bench.plan.memory_sessions, bench.client
    before = _used_memory(client)
    counter = bench.progress.counter(title, count)
    sessions = memory_mix(count, STORE_TENANT)
    created = create_many(store, sessions, keep=True, on_progress=counter.advance)
    counter.finish()
    store_bytes = _used_memory(client) - before
    detail = _key_detail(bench, created[0][0])
    if blobs is not None:
        blobs += [(session.id, _blob(session)) for session, _ in created]
    users = len({session.user_id for session, _ in created})
    addresses = len({session.ip_address for session, _ in created})
    del created
    delete_matching(client, bench.tenant_pattern(STORE_TENANT))
    return {
        "store_bytes_per_session": store_bytes / count,
        **detail,
        "users": users,
        "ip_addresses": addresses,
    }


def _blob(session: Session) -> bytes:
    expires = int(session.expires_at.timestamp() * 1000)
    flat = session_fields(session, expires)
    record = {
        field: value
        for field, value in zip(flat[::2], flat[1::2], strict=True)
        if not str(field).startswith("ua")
    }
    record["ua"] = session.user_agent
    record["h"] = bytes(32)  # stands in for the SHA-256 of the token's secret
    return msgpack.packb(record)


def _write_blobs(bench: Bench, blobs: list[tuple[str, bytes]]) -> None:
    expires = int((time.time() + bench.config.lifetime.total_seconds()) * 1000)
    for start in range(0, len(blobs), 1000):
        pipe = bench.client.pipeline(transaction=False)
        for session_id, blob in blobs[start : start + 1000]:
            pipe.set(bench.keys.session(BLOB_TENANT, session_id), blob, pxat=expires)
        pipe.execute()


def _key_detail(bench: Bench, sample: Session) -> dict[str, Any]:
    """Where the bytes go: MEMORY USAGE of every key the store wrote, by kind of key."""
    client, keys_of = bench.client, bench.keys
    by_kind: dict[str, list[int]] = {kind: [] for kind in KINDS.values()}
    keys: list[bytes | str] = list(
        client.scan_iter(match=bench.tenant_pattern(STORE_TENANT), count=1000)
    )
    layout = keys_of.layout()
    keys.append(layout)  # one per prefix, outside every tenant
    for key, usage in zip(keys, _memory_usage(client, keys), strict=True):
        kind = "layout" if key in (layout, layout.encode()) else _kind(key)
        by_kind.setdefault(kind, []).append(usage)
    sessions = bench.plan.memory_sessions
    bucket = keys_of.bucket_of(STORE_TENANT, sample.user_id)
    # The encoding of one key of each kind (a sample: its bucket and its user).
    sampled = {
        KINDS["s"]: keys_of.session(STORE_TENANT, sample.id),
        KINDS["u"]: keys_of.user_index(STORE_TENANT, sample.user_id),
        KINDS["t"]: keys_of.created_index(STORE_TENANT, bucket),
        KINDS["i"]: keys_of.ip_index(STORE_TENANT, bucket),
        KINDS["x"]: keys_of.idle_index(STORE_TENANT, bucket),
    }
    encodings = {kind: client.object("ENCODING", key) for kind, key in sampled.items()}
    per_kind = {
        kind: {
            "keys": len(usages),
            "bytes": sum(usages),
            "bytes_per_session": sum(usages) / sessions,
        }
        for kind, usages in by_kind.items()
    }
    return {
        "encodings": {
            kind: _text(encoding) for kind, encoding in encodings.items() if encoding is not None
        },
        "memory_usage_per_session": per_kind,
        "memory_usage_total_per_session": sum(
            usage["bytes_per_session"] for usage in per_kind.values()
        ),
    }


def _kind(key: bytes | str) -> str:
    # The part after the hash tag names the kind of key (see the table in keys.py).
    text = key.decode() if isinstance(key, bytes) else key
    suffix = text.rsplit("}:", 1)[-1]
    return KINDS.get(suffix.split(":", 1)[0], "other")


def _text(value: Any) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def _redis_config(client: Any) -> dict[str, str]:
    """The settings that decide the encodings (Redis's defaults unless someone changed them)."""
    names = (
        "hash-max-listpack-entries",
        "hash-max-listpack-value",
        "zset-max-listpack-entries",
        "zset-max-listpack-value",
    )
    try:
        found = {name: client.config_get(name).get(name) for name in names}
    except redis.RedisError:  # CONFIG is often disabled; the figures stand without it
        return {}
    return {name: str(_text(value)) for name, value in found.items() if value is not None}


def _memory_usage(client: Any, keys: Iterable[bytes | str]) -> list[int]:
    """MEMORY USAGE of each key, exact (every element counted), pipelined."""
    usages: list[int] = []
    keys = iter(keys)
    while batch := list(islice(keys, 1000)):
        pipe = client.pipeline(transaction=False)
        for key in batch:
            pipe.memory_usage(key, samples=0)
        usages += [usage or 0 for usage in pipe.execute()]
    return usages


def _used_memory(client: Any) -> int:
    # UNLINK frees in the background: wait until nothing is pending, so deltas are complete.
    for _ in range(100):
        info = client.info("memory")
        if not info.get("lazyfree_pending_objects"):
            return int(info["used_memory"])
        time.sleep(0.05)
    return int(client.info("memory")["used_memory"])
