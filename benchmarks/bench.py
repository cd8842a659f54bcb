"""One backend under test: its stores and clients, in a key prefix of its own.

Every key a run writes starts with ``<prefix>:``; closing the bench deletes them all with
SCAN MATCH + UNLINK, also after Ctrl-C or SIGTERM (a second Ctrl-C cannot cut the cleanup
short).
"""

from __future__ import annotations

import secrets
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, Self

from sessionstore import AsyncSessionStore, SessionStore, StoreConfig, _connection
from sessionstore._core.keys import KeySpace
from sessionstore.model import Session

from . import timing
from .bulk import delete_matching, load_scripts
from .plan import Plan
from .progress import Progress
from .timing import Effort, Stats


@dataclass(frozen=True, slots=True)
class Backend:
    name: str  # "redis" or "embedded"
    url: str | None  # None: the embedded in-process server
    cluster_url: str | None = None  # a Redis Cluster for the cluster section, if one answers

    @property
    def real(self) -> bool:
        return self.url is not None


class Bench:
    def __init__(self, backend: Backend, plan: Plan, progress: Progress) -> None:
        self.backend = backend
        self.plan = plan.embedded() if not backend.real else plan
        self.progress = progress
        self.prefix = f"ssbench-{secrets.token_hex(4)}"
        self.config = StoreConfig(
            prefix=self.prefix,
            max_sessions_per_user=10_000,  # revoke_all is measured up to 10,000 sessions
        )
        self.keys = KeySpace(self.config.prefix, self.config.tenant_buckets)
        self.store = SessionStore.from_url(backend.url, config=self.config)
        self.client = self.store.client
        # Sessions whose tokens the hot-path measures cycle through (set by the runner).
        self.probes: list[tuple[Session, str]] = []
        load_scripts(self.client)

    def __repr__(self) -> str:
        return f"Bench(backend={self.backend.name!r}, prefix={self.prefix!r})"

    def raw_client(self) -> Any:
        """A plain client with the store's connection settings, for the floors."""
        return _connection.sync_client(self.backend.url)

    def raw_async_client(self) -> Any:
        return _connection.async_client(self.backend.url)

    def async_store(self) -> AsyncSessionStore:
        return AsyncSessionStore.from_url(self.backend.url, config=self.config)

    def store_with(self, **changes: Any) -> SessionStore:
        """Another store on the same client and prefix, its config changed (say, the cap).

        It shares the bench's client: leave it open, closing the bench closes the client.
        The bucket count must stay the same, or the store refuses the prefix's layout.
        """
        return SessionStore(self.client, config=replace(self.config, **changes))

    def report(self, label: str, stats: Stats) -> dict[str, Any]:
        """Show a figure as soon as it is measured; returns it for the results file."""
        self.progress.result(label, stats.brief())
        return stats.to_dict()

    def compare(
        self, title: str, calls: dict[str, Callable[[], object]], effort: Effort
    ) -> dict[str, Any]:
        """Measure calls side by side (runs interleaved) and report each figure."""
        self._announce(title, len(calls), effort)
        measured = timing.compare(calls, effort)
        return {name: self.report(f"  {name}", stats) for name, stats in measured.items()}

    def compare_threaded(
        self, title: str, calls: dict[str, Callable[[], object]], effort: Effort, threads: int
    ) -> dict[str, Any]:
        """As ``compare``, each call from ``threads`` threads at once."""
        self._announce(title, len(calls), effort)
        measured = timing.compare_threaded(calls, effort, threads=threads)
        return {name: self.report(f"  {name}", stats) for name, stats in measured.items()}

    async def compare_concurrent(
        self, title: str, calls: dict[str, Callable[[], Awaitable[object]]], effort: Effort
    ) -> dict[str, Any]:
        """As ``compare``, each call from ``plan.concurrency`` tasks at once."""
        self._announce(title, len(calls), effort)
        measured = await timing.compare_concurrent(calls, effort, tasks=self.plan.concurrency)
        return {name: self.report(f"  {name}", stats) for name, stats in measured.items()}

    def _announce(self, title: str, count: int, effort: Effort) -> None:
        seconds = count * effort.runs * effort.seconds
        self.progress.note(f"  {title}: {count} measures, {effort.runs} runs each, ~{seconds:.0f}s")

    def tenant_pattern(self, tenant: str) -> str:
        """A SCAN pattern for every session and index key of one tenant (all its buckets).

        Cut from a key that keys.py builds: ``P:{T:bb}:t`` with ``??`` for the bucket, so a
        tenant whose name starts with this one's is not matched.
        """
        return self.keys.created_index(tenant, "??").removesuffix("t") + "*"

    def session_pattern(self, tenant: str) -> str:
        """A SCAN pattern for every session hash of one tenant: ``P:{T:??}:s:*``."""
        return self.keys.session(tenant, "sess_??*")

    def close(self) -> None:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            self.progress.note(f"cleaning up {self.prefix}:* on {self.backend.name} ...")
            deleted = delete_matching(self.client, f"{self.prefix}:*")
            self.progress.note(f"deleted {deleted:,} keys")
            self.store.close()
        finally:
            signal.signal(signal.SIGINT, previous)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
