"""Metrics and spans: every store call is counted by outcome and timed; nothing secret leaks.

Each store here has its own Prometheus registry (and an in-memory span exporter), so the
counts are exactly this test's. Latencies are only checked to have been recorded, never timed.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry, generate_latest

from sessionstore import (
    AsyncSessionStore,
    InvalidUserId,
    SessionStore,
    StoreConfig,
    StoreMetrics,
    StoreUnavailable,
)
from sessionstore._core.tokens import new_session
from sessionstore.admin.apikeys import mint
from tests import backends
from tests.api.helpers import unused_port

TENANT = "acme-corp"


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> StoreMetrics:
    return StoreMetrics(registry, tracing=False)


@pytest.fixture
def measured(
    client: Any, config: StoreConfig, clock: backends.Clock, metrics: StoreMetrics
) -> SessionStore:
    return SessionStore(client, config=config, clock=clock, metrics=metrics)


def count(registry: CollectorRegistry, operation: str, outcome: str) -> float:
    value = registry.get_sample_value(
        "sessionstore_operations_total", {"operation": operation, "outcome": outcome}
    )
    return value or 0.0


def timed(registry: CollectorRegistry, operation: str) -> float:
    value = registry.get_sample_value(
        "sessionstore_operation_duration_seconds_count", {"operation": operation}
    )
    return value or 0.0


def login(store: SessionStore, user_id: int = 7) -> tuple[Any, str]:
    return store.create(TENANT, user_id, ip_address="203.0.113.7", user_agent="pytest")


class TestValidateOutcomes:
    def test_a_live_session_is_valid_on_the_script_and_the_fast_path(
        self, measured: SessionStore, registry: CollectorRegistry
    ) -> None:
        _, token = login(measured)
        for _ in range(3):  # the first asks the script, the others read what can change
            assert measured.validate(TENANT, token) is not None
        assert count(registry, "validate", "valid") == 3
        assert timed(registry, "validate") == 3

    def test_junk_is_malformed_and_costs_no_redis(
        self, measured: SessionStore, registry: CollectorRegistry
    ) -> None:
        for junk in ("", "sst_short", "Bearer x", None):
            assert measured.validate(TENANT, junk) is None
        assert count(registry, "validate", "malformed") == 4

    def test_a_wrong_secret_or_an_unknown_session_is_unknown(
        self, measured: SessionStore, registry: CollectorRegistry
    ) -> None:
        _, token = login(measured)
        forged = token[:-1] + ("A" if token[-1] != "A" else "B")
        never_issued = token[:4] + "zz" + token[6:]
        assert measured.validate(TENANT, forged) is None
        assert measured.validate(TENANT, never_issued) is None
        assert count(registry, "validate", "unknown") == 2

    def test_a_revoked_session_is_revoked(
        self, measured: SessionStore, registry: CollectorRegistry
    ) -> None:
        session, token = login(measured)
        assert measured.validate(TENANT, token) is not None  # known to this process
        measured.revoke(TENANT, 7, session.id)
        assert measured.validate(TENANT, token) is None
        assert count(registry, "validate", "revoked") == 1

    def test_a_session_past_its_end_is_expired(
        self, measured: SessionStore, registry: CollectorRegistry, clock: backends.Clock
    ) -> None:
        _, token = login(measured)
        clock.advance(2 * 86400)
        assert measured.validate(TENANT, token) is None
        assert count(registry, "validate", "expired") == 1


def test_other_operations_count_ok_and_invalid(
    measured: SessionStore, registry: CollectorRegistry
) -> None:
    session, _ = login(measured)
    measured.list_user_sessions(TENANT, 7)
    measured.revoke(TENANT, 7, session.id)
    with pytest.raises(InvalidUserId):
        measured.revoke_all(TENANT, -1)
    assert count(registry, "create", "ok") == 1
    assert count(registry, "list_user_sessions", "ok") == 1
    assert count(registry, "revoke", "ok") == 1
    assert count(registry, "revoke_all", "invalid") == 1
    assert timed(registry, "create") == 1


@pytest.mark.parametrize("face", ["sync", "async"])
async def test_each_method_is_counted_under_its_own_name(
    face: str, client: Any, config: StoreConfig, clock: backends.Clock, backend: str, request: Any
) -> None:
    """The label is the method's name, not the core flow it runs (mark_mfa_verified runs
    update, tail runs newest_event): a dashboard reads what the caller called."""
    registry = CollectorRegistry()
    metrics = StoreMetrics(registry, tracing=False)
    sync = SessionStore(client, config=config, clock=clock, metrics=metrics)
    session, _ = login(sync)
    if face == "sync":
        assert sync.mark_mfa_verified(TENANT, session.id)
    else:
        fake_server = request.getfixturevalue("fake_server")
        async_store = AsyncSessionStore(
            backends.async_client(backend, fake_server), config=config, clock=clock, metrics=metrics
        )
        async with async_store:
            assert await async_store.mark_mfa_verified(TENANT, session.id)
    assert count(registry, "mark_mfa_verified", "ok") == 1
    assert count(registry, "update", "ok") == 0


def test_redis_down_counts_unavailable_and_the_error_kind(
    metrics: StoreMetrics, registry: CollectorRegistry
) -> None:
    store = SessionStore.from_url(
        f"redis://127.0.0.1:{unused_port()}", config=StoreConfig(prefix="down"), metrics=metrics
    )
    with pytest.raises(StoreUnavailable):
        store.validate(TENANT, new_session("00")[1])  # well formed: Redis must be asked
    with pytest.raises(StoreUnavailable):
        store.list_user_sessions(TENANT, 7)
    assert count(registry, "validate", "unavailable") == 1
    assert count(registry, "list_user_sessions", "unavailable") == 1
    assert (
        registry.get_sample_value("sessionstore_redis_errors_total", {"kind": "ConnectionError"})
        == 2
    )
    store.close()


def test_one_metrics_object_serves_many_stores(
    client: Any, config: StoreConfig, metrics: StoreMetrics, registry: CollectorRegistry
) -> None:
    first = SessionStore(client, config=config, metrics=metrics)
    second = SessionStore(client, config=config, metrics=metrics)
    login(first)
    login(second)
    assert count(registry, "create", "ok") == 2


def test_no_token_or_key_ever_reaches_the_exposition(
    measured: SessionStore, registry: CollectorRegistry
) -> None:
    session, token = login(measured)
    measured.validate(TENANT, token)
    measured.validate(TENANT, token[:-3] + "xyz")
    exposition = generate_latest(registry).decode()
    secret_part = token[-32:]
    assert token not in exposition and secret_part not in exposition
    assert session.id not in exposition  # labels are operations, never ids
    assert 'operation="validate"' in exposition


async def test_the_async_store_is_measured_the_same_way(
    backend: str, fake_server: Any, config: StoreConfig, registry: CollectorRegistry
) -> None:
    metrics = StoreMetrics(registry, tracing=False)
    store = AsyncSessionStore(
        backends.async_client(backend, fake_server), config=config, metrics=metrics
    )
    _, token = await store.create(TENANT, 7, ip_address="203.0.113.7", user_agent="pytest")
    assert await store.validate(TENANT, token) is not None
    assert count(registry, "create", "ok") == 1
    assert count(registry, "validate", "valid") == 1
    await store.aclose()


def test_spans_name_the_operation_and_carry_no_token(
    client: Any, config: StoreConfig, registry: CollectorRegistry
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    store = SessionStore(
        client, config=config, metrics=StoreMetrics(registry, tracer_provider=provider)
    )
    _, token = login(store)
    store.validate(TENANT, token)
    spans = exporter.get_finished_spans()
    assert [span.name for span in spans] == ["sessionstore.create", "sessionstore.validate"]
    assert all(token not in repr(dict(span.attributes or {})) for span in spans)


def test_near_cache_answers_are_counted(
    client: Any, config: StoreConfig, registry: CollectorRegistry
) -> None:
    config = StoreConfig(prefix=config.prefix, near_cache_size=10)
    store = SessionStore(client, config=config, metrics=StoreMetrics(registry, tracing=False))
    deadline = time.monotonic() + 5
    while not store.near_cache_stats().trusted:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    _, token = login(store)
    for _ in range(3):
        store.validate(TENANT, token)
    name = "sessionstore_near_cache_validations_total"
    assert registry.get_sample_value(name, {"result": "miss"}) == 1
    assert registry.get_sample_value(name, {"result": "hit"}) == 2
    store.close()


async def test_an_outage_counts_wherever_redis_is_asked(
    metrics: StoreMetrics, registry: CollectorRegistry
) -> None:
    """The admin API's key lookups and the sweep meet an outage before (or instead of) any
    store operation: each failure counts in sessionstore_redis_errors_total all the same."""
    import httpx

    from sessionstore.admin.app import create_app

    store = AsyncSessionStore.from_url(
        f"redis://127.0.0.1:{unused_port()}", config=StoreConfig(prefix="down"), metrics=metrics
    )
    app = create_app(store)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        answer = await http.get(
            f"/t/{TENANT}/api/v1/admin/sessions",
            headers={"authorization": "Bearer " + mint()[1]},
        )
    assert answer.status_code == 503
    errors = {"kind": "ConnectionError"}
    assert registry.get_sample_value("sessionstore_redis_errors_total", errors) == 1
    with pytest.raises(StoreUnavailable):
        await store.sweep_expired()
    assert registry.get_sample_value("sessionstore_redis_errors_total", errors) == 2
    await store.aclose()
