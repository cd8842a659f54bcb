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
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from .errors import InvalidArgument, StoreUnavailable

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = ["ApiMetrics", "DeliveryMetrics", "StoreMetrics"]

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
        """Count one validation by its answer (one of VALIDATE_OUTCOMES)."""
        self._validated[outcome].inc()

    def redis_failed(self, error: BaseException) -> None:
        """Count a Redis failure met outside a store operation (API key lookups, the console,
        the sweep, the webhook deliverer): an outage shows wherever Redis was asked."""
        self.redis_errors.labels(type(error).__name__).inc()

    def near_cache(self, hit: bool) -> None:
        """Count one near-cache lookup as a hit or a miss."""
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
            self.redis_failed(error.__cause__ or error)
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
    """``sessionstore_admin_requests_total{route, method, status}`` and their latency.

    Every label value comes from a fixed set, so no client can add series: ``route`` is a
    route template or ``other`` (admin/app.py: ``route_of``), ``method`` one of ``METHODS``
    or ``other`` (a server takes any token as a method), ``status`` an HTTP status code or
    ``other``.
    """

    METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
    STATUSES = frozenset(int(status) for status in HTTPStatus)
    OTHER = "other"

    @classmethod
    def method_label(cls, method: object) -> str:
        """The method as a label or log field: one of ``METHODS`` (case counts), else other."""
        return method if isinstance(method, str) and method in cls.METHODS else cls.OTHER

    @classmethod
    def status_label(cls, status: object) -> str:
        """The status as a label: an HTTP status code, else other."""
        if isinstance(status, int) and status in cls.STATUSES:
            return str(int(status))
        return cls.OTHER

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
        """Count one request; ``route`` must be a template (or other), never a raw path."""
        self.requests.labels(route, self.method_label(method), self.status_label(status)).inc()
        self.duration.labels(route).observe(seconds)


def _tracer(provider: Any) -> Any:
    if provider is not None:
        return provider.get_tracer("sessionstore")
    try:
        from opentelemetry import trace
    except ImportError:
        return None
    return trace.get_tracer("sessionstore")


# What a webhook delivery attempt came to: delivered (2xx), failed (another status, or the
# connection failed), refused (a destination the server does not deliver to), unresolved (the
# name did not resolve in time), timeout (no answer in time).
DELIVERY_OUTCOMES = ("delivered", "failed", "refused", "unresolved", "timeout")

# Seconds from an event to its delivery: settling takes 2 s, retries back off up to an hour,
# and an endpoint is given up on after 24 hours.
LAG_BUCKETS = (
    0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 24 * 3600.0,
)  # fmt: skip


class DeliveryMetrics:
    """The webhook deliverer's metrics (webhooks.Deliverer ``metrics=``).

    ``sessionstore_webhook_attempts_total{outcome}``: attempts by DELIVERY_OUTCOMES.
    ``sessionstore_webhook_delivery_lag_seconds``: from an event's time to its delivery.
    ``sessionstore_webhook_endpoints_disabled_total``: endpoints given up on (24 h failing).
    No label names a tenant, an endpoint or an error text.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        from prometheus_client import REGISTRY, Counter, Histogram

        registry = REGISTRY if registry is None else registry
        attempts = Counter(
            "sessionstore_webhook_attempts",
            "Webhook delivery attempts by outcome (delivered, failed, refused, unresolved, "
            "timeout).",
            ["outcome"],
            registry=registry,
        )
        self._attempts = {outcome: attempts.labels(outcome) for outcome in DELIVERY_OUTCOMES}
        self.lag = Histogram(
            "sessionstore_webhook_delivery_lag_seconds",
            "Seconds from an event's time to its delivery to an endpoint.",
            buckets=LAG_BUCKETS,
            registry=registry,
        )
        self.disabled = Counter(
            "sessionstore_webhook_endpoints_disabled",
            "Webhook endpoints disabled after failing for too long.",
            registry=registry,
        )

    def attempt(self, outcome: str) -> None:
        """Count one delivery attempt by its outcome (one of DELIVERY_OUTCOMES; else ValueError)."""
        child = self._attempts.get(outcome)
        if child is None:
            raise ValueError(f"no such outcome {outcome!r}: one of {DELIVERY_OUTCOMES}")
        child.inc()

    def delivered(self, lag: float) -> None:
        """Record how long an event waited, from its recording to its delivery, in seconds."""
        self.lag.observe(max(0.0, lag))

    def endpoint_disabled(self) -> None:
        """Count an endpoint disabled after failing for 24 hours (delivery.GIVE_UP_AFTER)."""
        self.disabled.inc()
