"""Loading many sessions fast, and removing every key a run wrote.

``create_many`` writes sessions through the store's own create path: it starts one
``_core`` create flow per session and sends the batches of hundreds of flows in one pipeline,
so the Lua script, its arguments, the keys and every index are exactly those of
``store.create``; only the round trips are shared. The store's once-per-store layout check
runs first, through the store itself, so the flows start at their create script.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Any

from redis.exceptions import NoScriptError

from sessionstore import SessionStore
from sessionstore._core import scripts
from sessionstore._core.flows import Call, wire_args
from sessionstore.model import Session

from .workload import NewSession

FLOWS_PER_PIPELINE = 400
SCAN_COUNT = 1000


def create_many(
    store: SessionStore,
    sessions: Iterable[NewSession],
    *,
    keep: bool = False,
    on_progress: Callable[[int], None] | None = None,
) -> list[tuple[Session, str]]:
    """Create every session; returns (session, token) pairs only when ``keep`` (they are big)."""
    created: list[tuple[Session, str]] = []
    check_layout(store)
    for chunk in _chunks(iter(sessions), FLOWS_PER_PIPELINE):
        results = _run_flows(store, chunk)
        if keep:
            created += results
        if on_progress is not None:
            on_progress(len(chunk))
    return created


def _run_flows(store: SessionStore, chunk: list[NewSession]) -> list[tuple[Session, str]]:
    # The store's flows, stepped together: each step's batches share one pipeline.
    core = store._core  # private on purpose: the benchmark drives the store's own flows
    flows = [
        core.create(
            new.tenant,
            new.user_id,
            ip_address=new.ip_address,
            user_agent=new.user_agent,
            auth_method=new.auth_method,
            mfa_verified=new.mfa_verified,
        )
        for new in chunk
    ]
    pending = [(flow, next(flow)) for flow in flows]
    done: list[tuple[Session, str]] = []
    while pending:
        replies = iter(_execute(store.client, [call for _, batch in pending for call in batch]))
        stepped = []
        for flow, batch in pending:
            try:
                stepped.append((flow, flow.send([next(replies) for _ in batch])))
            except StopIteration as finished:
                done.append(finished.value)
        pending = stepped
    return done


def check_layout(store: SessionStore) -> None:
    """The store's layout check (``Core.check_layout``), once, as its first operation runs it."""
    if not store._core.layout_checked:
        store._run_flow(store._core.check_layout())


def _execute(client: Any, calls: list[Call]) -> list[Any]:
    try:
        return list(_pipeline(client, calls).execute())
    except NoScriptError:
        # Redis lost its scripts (restart, SCRIPT FLUSH). Every script is safe to run twice:
        # a repeated create finds its own session.
        load_scripts(client)
        return list(_pipeline(client, calls).execute())


def _pipeline(client: Any, calls: list[Call]) -> Any:
    pipe = client.pipeline(transaction=False)
    for call in calls:
        pipe.execute_command(*wire_args(call))
    return pipe


def load_scripts(client: Any) -> None:
    """Pipelines cannot answer NOSCRIPT by loading the script, so load them all first."""
    for script in scripts.ALL:
        client.script_load(script.source)


def _chunks(items: Iterator[NewSession], size: int) -> Iterator[list[NewSession]]:
    while chunk := list(islice(items, size)):
        yield chunk


def delete_matching(client: Any, pattern: str) -> int:
    """SCAN MATCH ``pattern`` and UNLINK what it finds; returns how many keys went."""
    deleted = 0
    batch: list[bytes] = []
    for key in client.scan_iter(match=pattern, count=SCAN_COUNT):
        batch.append(key)
        if len(batch) >= SCAN_COUNT:
            deleted += client.unlink(*batch)
            batch = []
    if batch:
        deleted += client.unlink(*batch)
    return deleted
