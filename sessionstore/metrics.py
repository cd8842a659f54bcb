"""Prometheus metrics and OpenTelemetry spans of store operations and admin requests.

A store counts nothing until it is given a ``StoreMetrics``; one ``StoreMetrics`` serves any
number of stores, and its metrics go to the registry it is given (prometheus_client's default
registry unless told otherwise), so an app shows them beside its own::

    metrics = StoreMetrics(registry=my_registry)
    store = SessionStore.from_url(url, metrics=metrics)

Spans are made only when ``opentelemetry`` is installed, and cost nothing more than its no-op
tracer until an SDK is configured. No label or attribute ever holds a token, key or secret:
labels are operation names, outcomes, error class names, routes and status codes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

from .errors import InvalidArgument, StoreUnavailable

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

# Validate answers one of these; the other operations answer ok, invalid or unavailable.
VALIDATE_OUTCOMES = ("valid", "unknown", "expired", "revoked", "malformed", "unavailable")

# Seconds: a validate is ~0.1-1 ms on a healthy Redis; a bulk revocation can take seconds.
LATENCY_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
)  # fmt: skip


class StoreMetrics:
    """The store's Prometheus metrics (and spans); share one between stores of a process.

    ``sessionstore_operations_total{operation, outcome}``: every store call by its outcome.
    ``sessionstore_operation_duration_seconds{operation}``: its latency, Redis round trips
    included. ``sessionstore_redis_errors_total{kind}``: Redis failures by error class.
    ``sessionstore_near_cache_validations_total{result}``: hit or miss, with a near cache.
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        tracing: bool = True,
        tracer_provider: Any = None,
    ) -> None:
        """``tracer_provider``: an OpenTelemetry provider; the global one when None."""
        from prometheus_client import REGISTRY, Counter, Histogram

        registry = REGISTRY if registry is None else registry
        self.operations = Counter(
            "sessionstore_operations",
            "Store operations by outcome (validate: valid, unknown, expired, revoked, "
            "malformed, unavailable; others: ok, invalid, unavailable).",
            ["operation", "outcome"],
            registry=registry,
        )
        self.duration = Histogram(
            "sessionstore_operation_duration_seconds",
            "Store operation latency, Redis round trips included.",
            ["operation"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.redis_errors = Counter(
            "sessionstore_redis_errors",
            "Redis failures seen by store operations, by error class.",
            ["kind"],
            registry=registry,
        )
        near = Counter(
            "sessionstore_near_cache_validations",
            "Validations answered from the near cache (hit) or from Redis (miss), when a store "
            "keeps one.",
            ["result"],
            registry=registry,
        )
        self._near_hit, self._near_miss = near.labels("hit"), near.labels("miss")
        self._tracer = _tracer(tracer_provider) if tracing else None
        # Bound children: the hot path pays a dict lookup, not label parsing.
        self._validated = {
            outcome: self.operations.labels("validate", outcome) for outcome in VALIDATE_OUTCOMES
        }
        self._timers: dict[str, Any] = {}

    def validated(self, outcome: str) -> None:
        self._validated[outcome].inc()

    def near_cache(self, hit: bool) -> None:
        (self._near_hit if hit else self._near_miss).inc()

    @contextmanager
    def operation(self, name: str) -> Iterator[None]:
        """Time one store call and count how it ended (validate counts its own answers)."""
        timer = self._timers.get(name)
        if timer is None:
            timer = self._timers[name] = self.duration.labels(name)
        started = time.perf_counter()
        span = self._span(name)
        try:
            with span:
                yield
        except StoreUnavailable as error:
            cause = error.__cause__ or error
            self.redis_errors.labels(type(cause).__name__).inc()
            self.operations.labels(name, "unavailable").inc()
            raise
        except InvalidArgument:
            self.operations.labels(name, "invalid").inc()
            raise
        else:
            if name != "validate":
                self.operations.labels(name, "ok").inc()
        finally:
            timer.observe(time.perf_counter() - started)

    def _span(self, name: str) -> AbstractContextManager[Any]:
        if self._tracer is None:
            return nullcontext()
        span: AbstractContextManager[Any] = self._tracer.start_as_current_span(
            f"sessionstore.{name}", attributes={"db.system": "redis"}
        )
        return span


class ApiMetrics:
    """``sessionstore_admin_requests_total{route, method, status}`` and their latency."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        from prometheus_client import REGISTRY, Counter, Histogram

        registry = REGISTRY if registry is None else registry
        self.requests = Counter(
            "sessionstore_admin_requests",
            "Admin API requests by route template, method and status.",
            ["route", "method", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "sessionstore_admin_request_duration_seconds",
            "Admin API request latency by route template.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.duration.labels(route).observe(seconds)


def _tracer(provider: Any) -> Any:
    if provider is not None:
        return provider.get_tracer("sessionstore")
    try:
        from opentelemetry import trace
    except ImportError:
        return None
    return trace.get_tracer("sessionstore")
