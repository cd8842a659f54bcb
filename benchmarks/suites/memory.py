"""Redis memory per session, indexes included, beside a plain msgpack blob per session.

Both figures are INFO memory ``used_memory`` deltas over the same sessions: first written by
the store (hash, user index, IP index, tenant bucket), then deleted, then written as one
``SET key <msgpack> PXAT expiry`` each with no index at all. The blob holds the same fields,
the user agent whole and the 32-byte secret hash: the smallest way to keep the same session.
MEMORY USAGE of every key, by kind, shows where the bytes go; unlike used_memory it is not
moved by other clients of a shared server.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from itertools import islice
from typing import Any

import msgpack

from sessionstore.codec import session_fields
from sessionstore.model import Session

from ..bench import Bench
from ..bulk import create_many, delete_matching
from ..workload import background

STORE_TENANT = "mem-hash"
BLOB_TENANT = "mem-blob"  # as long as STORE_TENANT, so both keys cost the same bytes


def run(bench: Bench) -> dict[str, Any]:
    if not bench.backend.real:
        return {}  # the embedded server keeps no memory accounting (no INFO)
    count = bench.plan.memory_sessions
    client = bench.client
    before = _used_memory(client)
    counter = bench.progress.counter("writing sessions with the store", count)
    sessions = background(0, count, tenant=STORE_TENANT)
    created = create_many(bench.store, sessions, keep=True, on_progress=counter.advance)
    counter.finish()
    store_bytes = _used_memory(client) - before
    detail = _key_detail(bench, created[0][0].id)
    blobs = [(session.id, _blob(session)) for session, _ in created]
    del created
    delete_matching(client, bench.tenant_pattern(STORE_TENANT))

    before = _used_memory(client)
    _write_blobs(bench, blobs)
    blob_bytes = _used_memory(client) - before
    blob_usage = _memory_usage(client, (bench.keys.session(BLOB_TENANT, sid) for sid, _ in blobs))
    delete_matching(client, bench.tenant_pattern(BLOB_TENANT))

    results = {
        "sessions": count,
        "store_bytes_per_session": store_bytes / count,
        "blob_bytes_per_session": blob_bytes / count,
        "blob_payload_bytes": sum(len(blob) for _, blob in blobs) / count,
        "blob_memory_usage_per_session": sum(blob_usage) / count,
        **detail,
    }
    bench.progress.result(
        "memory per session: store (with indexes)", f"{results['store_bytes_per_session']:,.0f} B"
    )
    bench.progress.result(
        "memory per session: plain msgpack blob", f"{results['blob_bytes_per_session']:,.0f} B"
    )
    return results


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


def _key_detail(bench: Bench, session_id: str) -> dict[str, Any]:
    """Where the bytes go: MEMORY USAGE of every key the store wrote, by kind of key."""
    client = bench.client
    by_kind: dict[str, list[int]] = {}
    keys = list(client.scan_iter(match=bench.tenant_pattern(STORE_TENANT), count=1000))
    for key, usage in zip(keys, _memory_usage(client, keys), strict=True):
        by_kind.setdefault(_kind(key), []).append(usage)
    sessions = bench.plan.memory_sessions
    encoding = client.object("ENCODING", bench.keys.session(STORE_TENANT, session_id))
    return {
        "session_hash_encoding": encoding.decode() if isinstance(encoding, bytes) else encoding,
        "memory_usage_per_session": {
            kind: {"keys": len(usages), "bytes_per_session": sum(usages) / sessions}
            for kind, usages in sorted(by_kind.items(), key=lambda item: _ORDER.get(item[0], 9))
        },
    }


KINDS = {"s": "session hashes", "u": "user indexes", "i": "IP indexes", "t": "tenant buckets"}
_ORDER = {kind: rank for rank, kind in enumerate(KINDS.values())}


def _kind(key: bytes) -> str:
    # The part after the hash tag names the kind of key (see the table in keys.py).
    suffix = key.decode().rsplit("}:", 1)[-1]
    return KINDS.get(suffix.split(":", 1)[0], "other")


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
