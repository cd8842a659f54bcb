"""What SessionStore and AsyncSessionStore share: client, core and settings. Only I/O differs."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Self

from . import _connection
from ._core.flows import Command, Flow
from ._core.nearcache import NearCacheStats
from ._core.operations import Core
from ._core.tokens import ParsedToken
from .config import StoreConfig
from .geo import LocationResolver
from .model import Session

if TYPE_CHECKING:
    from .metrics import StoreMetrics


class BaseStore:
    # How a store of this kind connects: _connection.sync_client or _connection.async_client.
    _connect: ClassVar[Callable[..., Any]]

    def __init__(
        self,
        client: Any = None,
        *,
        config: StoreConfig | None = None,
        location_resolver: LocationResolver | None = None,
        clock: Callable[[], float] = time.time,
        metrics: StoreMetrics | None = None,
    ) -> None:
        self._client = type(self)._connect() if client is None else client
        self._cluster = _connection.is_cluster(self._client)
        self._raw = _connection.sends_raw(self._client)
        self._core = Core(config or StoreConfig(), location_resolver=location_resolver, clock=clock)
        self._busy_poll = self._core.config.busy_poll.total_seconds()  # the sync store's reads
        self._metrics = metrics
        if metrics is not None:
            self._core.validated = metrics.validated
            self._core.near_cache_answered = metrics.near_cache
        _connection.refuse_unsupported(self._client, self._core.config)
        self._subscriber: Any = None
        self._follow_changes()

    def _validation(
        self, tenant: str, token: object
    ) -> tuple[Session | None, Flow[Session | None] | None]:
        """validate's answer where it needs no Redis (a near-cache hit, a malformed token), or
        else the flow that finds it. With metrics, always the flow: every call is timed."""
        if self._metrics is not None:
            return None, self._core.validate(tenant, token)
        known = self._core.recall(tenant, token)
        if isinstance(known, ParsedToken):
            return None, self._core.validate_parsed(tenant, known)
        return known, None

    def _follow_changes(self) -> None:
        """With a near cache, start following the changes that invalidate it."""

    def near_cache_stats(self) -> NearCacheStats:
        """Hits, misses, invalidations and resets of the near cache (zeros when it is off)."""
        cache = self._core.near
        return NearCacheStats(0, 0, 0, 0, 0, False) if cache is None else cache.stats()

    @classmethod
    def from_url(
        cls,
        url: str | None,
        *,
        config: StoreConfig | None = None,
        location_resolver: LocationResolver | None = None,
        clock: Callable[[], float] = time.time,
        metrics: StoreMetrics | None = None,
        **redis_options: Any,
    ) -> Self:
        """``redis://``, ``rediss://``, ``redis+cluster://``; None for the embedded store."""
        client = cls._connect(url, **redis_options)
        return cls(
            client,
            config=config,
            location_resolver=location_resolver,
            clock=clock,
            metrics=metrics,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(prefix={self.config.prefix!r}, cluster={self._cluster})"

    def _route(self, command: Command) -> dict[str, Any]:
        """Where a command alone goes: a keyless one to every primary of a cluster."""
        if not (self._cluster and command.keyless):
            return {}
        # Named nodes: redis-py routes a node flag for a command it cannot map to a slot only
        # before the client has learned the topology.
        primaries = self._client.get_primaries()
        return {"target_nodes": primaries} if primaries else {}

    @property
    def config(self) -> StoreConfig:
        return self._core.config

    @property
    def metrics(self) -> StoreMetrics | None:
        """The metrics this store counts in (None: it counts nothing)."""
        return self._metrics

    def _redis_failed(self, error: Exception) -> None:
        if self._metrics is not None:
            self._metrics.redis_failed(error)

    @property
    def client(self) -> Any:
        """The redis-py (or fakeredis) client the store runs on."""
        return self._client


def settled(replies: list[Any]) -> bool:
    """Whether a batch's replies need no settling: none is an error (every validate's batch)."""
    return not any(isinstance(reply, Exception) for reply in replies)
