"""``sessionstore serve``: the admin app on uvicorn, and what runs beside it.

``serve(settings)`` composes, in this order, so that every mistake in the settings is found
before anything is logged or Redis is asked:

1. the settings' own checks (``--demo`` only on the embedded store, a URL or ``--embedded``);
2. the ports: the metrics server (``--metrics-port``) and the API's socket, bound here so
   that a port in use is one line naming its option, and ``--port 0`` has a number to print;
3. the store, and Redis answering it (``answering``, up to ``--wait`` seconds);
4. the demo's data (``--demo``, demo.py);
5. the app (``admin.create_app``), with what runs beside it while it serves: with events on,
   the webhook deliverer and the sweep for quiet expiries;
6. uvicorn, until SIGINT or SIGTERM: it drains requests, stops what runs beside the app, the
   app closes the store, and the signal is raised again so the exit status says what stopped
   the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from redis.exceptions import RedisClusterException, RedisError

from . import _connection, demo
from .admin.ratelimit import Rate, RateLimits
from .aio import AsyncSessionStore
from .config import StoreConfig
from .errors import InvalidArgument, StoreUnavailable
from .metrics import ApiMetrics, DeliveryMetrics, StoreMetrics

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from .admin.app import Companion

__all__ = ["WAIT_HINT", "ServerSettings", "answering", "serve", "sweeping"]

log = logging.getLogger("sessionstore.serve")

# What a command that can wait for Redis adds when Redis does not answer.
WAIT_HINT = "start it, or give --wait SECONDS"
_RETRY_PAUSE = 0.5  # seconds between pings while waiting for Redis
_DEFAULT_LIMITS = RateLimits()


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """What ``sessionstore serve`` runs with: each field is the option of the same name
    (``redis_url`` is ``--redis-url``), and messages about a field name that option."""

    redis_url: str | None = None
    prefix: str = StoreConfig().prefix
    host: str = "127.0.0.1"
    port: int = 8080
    wait: float = 0.0
    demo: bool = False
    embedded: bool = False
    events: bool = False
    allow_private_destinations: bool = False
    allow_metadata_destinations: bool = False
    sweep_every: float = 60.0
    near_cache_size: int = 0
    metrics_port: int = 0
    rate_per_key: Rate = _DEFAULT_LIMITS.per_key
    rate_per_tenant: Rate = _DEFAULT_LIMITS.per_tenant
    rate_failed_auth: Rate = _DEFAULT_LIMITS.failed_auth_per_ip

    def check(self) -> None:
        """Refuse settings that contradict each other (InvalidArgument)."""
        if self.demo and self.redis_url is not None:
            raise InvalidArgument(
                "--demo seeds a never-expiring API key and sample sessions: it runs on the "
                "embedded store only; against Redis, mint a key with `sessionstore apikey create`"
            )
        if self.redis_url is None and not (self.demo or self.embedded):
            raise InvalidArgument(
                "give --redis-url (or $SESSIONSTORE_REDIS_URL); to try it without Redis, "
                "--demo or --embedded"
            )

    @property
    def records_events(self) -> bool:
        """The demo records events, so its console's events page has something to show."""
        return self.events or self.demo

    @property
    def limits(self) -> RateLimits:
        """The admin API's limits these settings ask for."""
        return RateLimits(
            per_key=self.rate_per_key,
            per_tenant=self.rate_per_tenant,
            failed_auth_per_ip=self.rate_failed_auth,
        )


async def serve(settings: ServerSettings) -> None:
    """Serve the admin API as ``settings`` say until SIGINT or SIGTERM (see the module's
    docstring). Raises InvalidArgument for a mistake in the settings (a port in use among
    them), RedisFailure when Redis does not answer in time or refuses the store."""
    settings.check()
    with (
        _metrics_server(settings) as (store_metrics, api_metrics),
        _listening(settings.host, settings.port) as sock,
    ):
        if settings.redis_url is None:
            log.warning(
                "serving the embedded store: its sessions and keys live in this one process "
                "and vanish when it stops; other processes cannot see them"
            )
        store = _store(settings, store_metrics)
        try:
            await answering(store, settings.redis_url, settings.wait, hint=WAIT_HINT)
            base_url = _base_url(settings.host, sock)
            if settings.demo:
                print((await demo.seed(store)).instructions(base_url), flush=True)
            await _uvicorn(_app(settings, store, store_metrics, api_metrics, base_url), sock)
        finally:
            await store.aclose()  # if serving never started; closing twice is harmless


def _store(settings: ServerSettings, metrics: StoreMetrics | None) -> AsyncSessionStore:
    return AsyncSessionStore.from_url(
        settings.redis_url,
        config=StoreConfig(
            prefix=settings.prefix,
            events=settings.records_events,
            near_cache_size=settings.near_cache_size,
        ),
        metrics=metrics,
    )


async def _uvicorn(app: Starlette, sock: socket.socket) -> None:
    """uvicorn serving ``app`` on ``sock``. On SIGINT or SIGTERM it drains requests, runs the
    app's shutdown, then raises the signal again, so the exit status says what stopped it."""
    # The admin server's packages (the server extra), loaded only when serving.
    import uvicorn

    config = uvicorn.Config(
        app,
        log_config=None,  # logging as the command line configured it
        access_log=False,  # admin.AccessLog writes one line per request, with its time
        proxy_headers=False,  # client addresses feed the failed-auth limit: trust none
    )
    sock.listen(config.backlog)
    await uvicorn.Server(config).serve(sockets=[sock])


def _app(
    settings: ServerSettings,
    store: AsyncSessionStore,
    store_metrics: StoreMetrics | None,
    api_metrics: ApiMetrics | None,
    base_url: str,
) -> Starlette:
    """The admin app, with the deliverer and the sweep beside it when events are on."""
    from .admin import create_app

    alongside: list[Companion] = []
    if store.config.events:
        alongside.append(_delivering(settings, store, store_metrics))
        alongside.append(sweeping(store, settings.sweep_every))
    alongside.append(_announcing(base_url))
    return create_app(
        store,
        limits=settings.limits,
        close_store=True,
        metrics=api_metrics,
        allow_private_destinations=settings.allow_private_destinations,
        allow_metadata_destinations=settings.allow_metadata_destinations,
        alongside=alongside,
    )


async def answering(
    store: AsyncSessionStore, url: str | None, wait: float, *, hint: str = ""
) -> None:
    """Return once Redis answers ``store``; keep asking for ``wait`` seconds while it does not
    (a container starting beside it). Credentials or a database refused end it at once: asking
    again cannot help. Raises RedisFailure naming the Redis and what happened, with ``hint``
    when it did not answer."""
    deadline = time.monotonic() + wait
    while True:
        try:
            await store.client.ping()
            return
        except (RedisError, RedisClusterException) as error:
            retry = _connection.unreachable(error)
            if not retry or time.monotonic() >= deadline:
                told = _connection.explain(error, url)
                raise _connection.RedisFailure(
                    f"{told}; {hint}" if retry and hint else told
                ) from None
            await asyncio.sleep(min(_RETRY_PAUSE, max(deadline - time.monotonic(), 0)))


def sweeping(store: AsyncSessionStore, every: float) -> Companion:
    """Every ``every`` seconds while it runs, record the expiries nobody asked about
    (``store.sweep_expired``): the bound on how late a session.expired event can come from a
    quiet bucket. A sweep that meets an unavailable Redis is skipped, and logged."""

    async def sweep_forever() -> None:
        while True:
            await asyncio.sleep(every)
            try:
                swept = await store.sweep_expired()
                log.debug("swept %d buckets for ended sessions", swept)
            except StoreUnavailable as error:
                log.warning("sweep for ended sessions skipped: %s", error)

    @asynccontextmanager
    async def running() -> AsyncIterator[None]:
        task = asyncio.create_task(sweep_forever(), name="sweep for ended sessions")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            log.info("stopped the sweep")  # each step of a shutdown says so: a hang names itself

    return running


def _delivering(
    settings: ServerSettings, store: AsyncSessionStore, store_metrics: StoreMetrics | None
) -> Companion:
    """The webhook deliverer, run while the app serves and stopped (its leases given back)
    before the store closes."""
    from .webhooks.delivery import Deliverer

    deliverer = Deliverer(
        store,
        allow_private=settings.allow_private_destinations,
        allow_metadata=settings.allow_metadata_destinations,
        metrics=DeliveryMetrics() if store_metrics is not None else None,
    )

    @asynccontextmanager
    async def running() -> AsyncIterator[None]:
        async with deliverer.running():
            log.info("delivering webhooks as %s", deliverer.name)
            yield
        log.info("stopped delivering webhooks")

    return running


def _announcing(base_url: str) -> Companion:
    """Say where the server listens once the app has started: uvicorn's own words, which it
    does not log for a socket it is handed (process managers and tests wait for them)."""

    @asynccontextmanager
    async def announced() -> AsyncIterator[None]:
        logging.getLogger("uvicorn.error").info(
            "Uvicorn running on %s (Press CTRL+C to quit)", base_url
        )
        yield

    return announced


@contextlib.contextmanager
def _metrics_server(
    settings: ServerSettings,
) -> Iterator[tuple[StoreMetrics | None, ApiMetrics | None]]:
    """With ``metrics_port``, Prometheus metrics on their own port (not the API's, so the API
    key guard and the rate limits never stand between a scraper and its figures)."""
    if not settings.metrics_port:
        yield None, None
        return
    from prometheus_client import start_http_server

    try:
        exposition, thread = start_http_server(settings.metrics_port, addr=settings.host)
    except OSError as error:
        raise InvalidArgument(
            f"--metrics-port {settings.metrics_port}: cannot listen on {settings.host} "
            f"({error.strerror})"
        ) from None
    log.info("metrics on http://%s:%d/metrics", settings.host, settings.metrics_port)
    try:
        yield StoreMetrics(), ApiMetrics()
    finally:
        exposition.shutdown()
        exposition.server_close()
        thread.join()
        log.info("stopped serving metrics")


@contextlib.contextmanager
def _listening(host: str, port: int) -> Iterator[socket.socket]:
    """The API's socket, bound (as uvicorn binds its own) but not yet listening, so nothing
    connects before the app can answer."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except socket.gaierror as error:
        sock.close()
        raise InvalidArgument(f"--host {host}: cannot listen there ({error.strerror})") from None
    except OSError as error:
        sock.close()
        raise InvalidArgument(
            f"--port {port}: cannot listen on {host} ({error.strerror})"
        ) from None
    with sock:
        yield sock


def _base_url(host: str, sock: socket.socket) -> str:
    """``http://HOST:PORT`` of the bound socket: the port the system chose for ``--port 0``."""
    port = sock.getsockname()[1]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
