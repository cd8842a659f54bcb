"""The ``sessionstore`` command: serve the admin API, manage its API keys, follow events.

    sessionstore serve [--redis-url URL] [--host 127.0.0.1] [--port 8080] [--demo] [--prefix P]
    sessionstore apikey create --tenant acme-corp [--redis-url URL]
    sessionstore apikey list --tenant acme-corp [--redis-url URL]
    sessionstore apikey revoke KEY_ID [--redis-url URL]
    sessionstore events tail --tenant acme-corp [--after EVENT_ID] [--redis-url URL]
    sessionstore events on|off|status [--redis-url URL]
    sessionstore webhooks add --tenant acme-corp --url URL [--types TYPE ...] [--redis-url URL]
    sessionstore webhooks list|remove|log --tenant acme-corp [WEBHOOK_ID] [--redis-url URL]
    sessionstore webhooks run [--allow-private-destinations] [--redis-url URL]

``--redis-url`` defaults to $SESSIONSTORE_REDIS_URL; without either, ``serve`` refuses to start
unless ``--embedded`` or ``--demo`` asks for the in-process store (gone when the process ends).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, NoReturn

from redis.exceptions import RedisError

from . import _connection, _logs
from .admin.apikeys import ApiKeys
from .admin.ratelimit import Rate, RateLimits
from .aio import AsyncSessionStore
from .config import StoreConfig
from .errors import InvalidArgument, StoreUnavailable
from .metrics import ApiMetrics, DeliveryMetrics, StoreMetrics
from .model import Location, isoformat

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from .webhooks import Deliverer

log = logging.getLogger("sessionstore.serve")

URL_VARIABLE = "SESSIONSTORE_REDIS_URL"

DEMO_TENANT = "acme-corp"
DEMO_USER = 456
DEMO_LOCATIONS = {"203.0.113.45": Location("New York", "US")}
_MAC_CHROME = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
)
_IPHONE_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1"
)
_WINDOWS_EDGE = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0"
)
_LINUX_FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"
# (user id, IP address, user agent, auth method, MFA verified)
DEMO_SESSIONS = [
    (DEMO_USER, "203.0.113.45", _MAC_CHROME, "password", True),
    (DEMO_USER, "198.51.100.23", _IPHONE_SAFARI, "social", False),
    (DEMO_USER, "192.0.2.77", _WINDOWS_EDGE, "sso", True),
    (789, "198.51.100.23", _LINUX_FIREFOX, "password", False),
]


# -- serve ------------------------------------------------------------------------------------


def demo_location(ip_address: str) -> Location | None:
    return DEMO_LOCATIONS.get(ip_address)


async def seed_demo(store: AsyncSessionStore, base_url: str) -> None:
    """Tenant acme-corp: an API key (printed once) and a few sessions, as in the spec."""
    _, key = await ApiKeys(store.client, store.config.prefix).create(DEMO_TENANT)
    locating = AsyncSessionStore(store.client, config=store.config, location_resolver=demo_location)
    ids = []
    for user_id, ip_address, user_agent, method, mfa in DEMO_SESSIONS:
        session, _ = await locating.create(
            DEMO_TENANT,
            user_id,
            ip_address=ip_address,
            user_agent=user_agent,
            auth_method=method,
            mfa_verified=mfa,
        )
        if user_id == DEMO_USER:
            ids.append(session.id)
    print(f"Demo tenant {DEMO_TENANT}; API key (shown once): {key}")
    print(f"Sessions of user {DEMO_USER}: {', '.join(ids)}")
    print(
        f"Try: curl {base_url}/t/{DEMO_TENANT}/api/v1/admin/users/{DEMO_USER}/sessions "
        f'-H "Authorization: Bearer {key}"',
    )
    print(f"Console: {base_url}/console/ (tenant {DEMO_TENANT}, the key above)", flush=True)


async def serve(args: argparse.Namespace) -> int:
    # The admin server's packages (the server extra), loaded only by the command that serves.
    import uvicorn

    from .admin import create_app

    if args.demo and args.redis_url is not None:
        raise InvalidArgument(
            "--demo seeds a never-expiring API key and sample sessions: it runs on the "
            "embedded store only; against Redis, mint a key with `sessionstore apikey create`"
        )
    embedded = args.redis_url is None
    if embedded and not (args.demo or args.embedded):
        raise InvalidArgument(
            f"give --redis-url (or ${URL_VARIABLE}); to try it without Redis, --demo or --embedded"
        )
    if embedded:
        log.warning(
            "serving the embedded store: its sessions and keys live in this one process and "
            "vanish when it stops; other processes cannot see them"
        )
    store_metrics, api_metrics = _metrics(args)
    store = AsyncSessionStore.from_url(
        args.redis_url,
        config=StoreConfig(
            prefix=args.prefix,
            events=args.events or args.demo,
            near_cache_size=args.near_cache_size,
        ),
        metrics=store_metrics,
    )
    try:
        await _answering(store, args.redis_url, args.wait)
        if args.demo:
            await seed_demo(store, f"http://{args.host}:{args.port or 'PORT'}")
        limits = RateLimits(
            per_key=args.rate_per_key,
            per_tenant=args.rate_per_tenant,
            failed_auth_per_ip=args.rate_failed_auth,
        )
        app = create_app(
            store,
            limits=limits,
            close_store=True,
            metrics=api_metrics,
            allow_private_destinations=args.allow_private_destinations,
        )
        app.state.allow_metadata_destinations = args.allow_metadata_destinations  # webhooks
        if store.config.events:
            from .webhooks import Deliverer

            deliverer = Deliverer(
                store,
                allow_private=args.allow_private_destinations,
                allow_metadata=args.allow_metadata_destinations,
                metrics=DeliveryMetrics() if store_metrics is not None else None,
            )
            _delivering(app, deliverer)
            _sweeping(app, store, args.sweep_every)
        config = uvicorn.Config(
            app,
            host=args.host,
            port=args.port,
            log_config=None,  # logging as configured in main()
            access_log=False,  # api.AccessLog writes one line per request, with its duration
            proxy_headers=False,  # client addresses feed the failed-auth limit: never trust headers
        )
        # On SIGINT/SIGTERM uvicorn drains requests, runs the app's shutdown (which closes the
        # store), then raises the signal again, so the exit status says what stopped us.
        await uvicorn.Server(config).serve()
    finally:
        await store.aclose()  # if serving never started; closing twice is harmless
    return 0


def _delivering(app: Starlette, deliverer: Deliverer) -> None:
    """Run the webhook deliverer while the app runs: started after the app's own start-up,
    stopped (its leases given back) before the app's shutdown closes the store."""
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        async with inner(app), deliverer.running():
            log.info("delivering webhooks as %s", deliverer.name)
            yield

    app.router.lifespan_context = lifespan


def _sweeping(app: Starlette, store: AsyncSessionStore, every: float) -> None:
    """Every ``every`` seconds, record the expiries nobody asked about (store.sweep_expired):
    the bound on how late a session.expired event can come from a quiet bucket."""
    inner = app.router.lifespan_context

    async def sweep_forever() -> None:
        while True:
            await asyncio.sleep(every)
            try:
                swept = await store.sweep_expired()
                log.debug("swept %d buckets for ended sessions", swept)
            except StoreUnavailable as error:
                log.warning("sweep for ended sessions skipped: %s", error)

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        async with inner(app):
            task = asyncio.create_task(sweep_forever())
            try:
                yield
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app.router.lifespan_context = lifespan


def _metrics(args: argparse.Namespace) -> tuple[StoreMetrics | None, ApiMetrics | None]:
    """With --metrics-port, Prometheus metrics on their own port (not the API's, so the API
    key guard and the rate limits never stand between a scraper and its figures)."""
    if not args.metrics_port:
        return None, None
    from prometheus_client import start_http_server

    try:
        start_http_server(args.metrics_port, addr=args.host)
    except OSError as error:
        raise InvalidArgument(
            f"--metrics-port {args.metrics_port}: cannot listen on {args.host} ({error.strerror})"
        ) from None
    log.info("metrics on http://%s:%d/metrics", args.host, args.metrics_port)
    return StoreMetrics(), ApiMetrics()


async def _answering(store: AsyncSessionStore, url: str | None, wait: float) -> None:
    """Ping Redis before serving; with ``--wait``, keep trying that long (a container start)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            await store.client.ping()
            return
        except RedisError as error:
            if time.monotonic() >= deadline:
                raise StoreUnavailable(
                    f"{_connection.describe(url)} does not answer ({type(error).__name__}); "
                    "start it, or give --wait SECONDS"
                ) from None
            await asyncio.sleep(min(0.5, max(deadline - time.monotonic(), 0)))


# -- apikey -----------------------------------------------------------------------------------


def _api_keys(args: argparse.Namespace) -> tuple[AsyncSessionStore, ApiKeys]:
    if args.redis_url is None:
        raise SystemExit(
            f"sessionstore apikey: give --redis-url or set ${URL_VARIABLE}; the embedded "
            "store lives only inside one process, so a key minted there could never be used."
        )
    store = AsyncSessionStore.from_url(args.redis_url, config=StoreConfig(prefix=args.prefix))
    return store, ApiKeys(store.client, args.prefix)


async def apikey_create(args: argparse.Namespace) -> int:
    store, api_keys = _api_keys(args)
    async with store:
        record, key = await api_keys.create(args.tenant)
    print(key)
    print(
        f"API key {record.id} for tenant {record.tenant}. It is shown once: store it now.",
        file=sys.stderr,
    )
    return 0


async def apikey_list(args: argparse.Namespace) -> int:
    store, api_keys = _api_keys(args)
    async with store:
        records = await api_keys.list(args.tenant)
    for record in records:
        created = "" if record.created_at is None else isoformat(record.created_at)
        print(f"{record.id}\t{record.tenant}\t{created}")
    return 0


async def apikey_revoke(args: argparse.Namespace) -> int:
    store, api_keys = _api_keys(args)
    async with store:
        revoked = await api_keys.revoke(args.key_id)
    if not revoked:
        print(f"sessionstore apikey: no API key {args.key_id}", file=sys.stderr)
        return 1
    print(f"revoked {args.key_id}")
    return 0


# -- events -----------------------------------------------------------------------------------


async def events_tail(args: argparse.Namespace) -> int:
    """One JSON object per line for each event of the tenant, as they come (Ctrl-C stops)."""
    async with _remote_store(args, "events live in the Redis that records them") as store:
        async for event in store.tail(args.tenant, after=args.after):
            print(json.dumps(event.to_dict(), separators=(",", ":")), flush=True)
    return 0


async def events_switch(args: argparse.Namespace) -> int:
    """Turn events on or off for every store under the prefix, or say which it is."""
    async with _remote_store(args, "the setting lives in the deployment's Redis") as store:
        await _answering(store, args.redis_url, 0.0)
        if args.action == "on":
            await store.enable_events()
        elif args.action == "off":
            await store.disable_events()
        print("on" if await store.events_enabled() else "off")
    return 0


# -- webhooks -----------------------------------------------------------------------------------


def _remote_store(args: argparse.Namespace, why: str) -> AsyncSessionStore:
    """A store on the deployment's Redis (never the embedded one: ``why`` says what lives
    there). Its config records nothing of its own: whether events are on is the deployment's
    setting, and reading or delivering them must not turn it on."""
    if args.redis_url is None:
        raise InvalidArgument(f"give --redis-url or set ${URL_VARIABLE}: {why}")
    return AsyncSessionStore.from_url(args.redis_url, config=StoreConfig(prefix=args.prefix))


def _webhook_store(args: argparse.Namespace) -> AsyncSessionStore:
    return _remote_store(args, "webhooks live in the Redis that records the events")


async def webhooks_add(args: argparse.Namespace) -> int:
    from .webhooks import Webhooks

    kinds = None
    if args.types is not None:
        kinds = [kind for text in args.types for kind in text.split(",") if kind]
    async with _webhook_store(args) as store:
        registry = Webhooks(
            store,
            allow_private=args.allow_private_destinations,
            allow_metadata=args.allow_metadata_destinations,
        )
        webhook, secret = await registry.add(args.tenant, args.url, types=kinds)
    print(f"{webhook.id}\t{secret}")
    print(
        f"Webhook {webhook.id} for tenant {webhook.tenant}: {webhook.url}. Its signing secret "
        "is shown once: store it now.",
        file=sys.stderr,
    )
    return 0


async def webhooks_list(args: argparse.Namespace) -> int:
    from .webhooks import Webhooks

    async with _webhook_store(args) as store:
        found = await Webhooks(store).list(args.tenant)
    for webhook in found:
        kinds = ",".join(sorted(webhook.types)) if webhook.types else "*"
        state = webhook.state
        if webhook.disabled_reason:
            state += f" ({webhook.disabled_reason})"
        elif webhook.failing_since is not None:
            state += f" (failing since {isoformat(webhook.failing_since)})"
        print(f"{webhook.id}\t{webhook.url}\t{kinds}\t{webhook.cursor or '-'}\t{state}")
    return 0


async def webhooks_remove(args: argparse.Namespace) -> int:
    from .webhooks import Webhooks

    async with _webhook_store(args) as store:
        removed = await Webhooks(store).remove(args.tenant, args.webhook_id)
    if not removed:
        print(
            f"sessionstore webhooks: tenant {args.tenant} has no webhook {args.webhook_id}",
            file=sys.stderr,
        )
        return 1
    print(f"removed {args.webhook_id}")
    return 0


async def webhooks_log(args: argparse.Namespace) -> int:
    """The latest delivery attempts, newest first: time, event, outcome, status, duration,
    error."""
    from .webhooks import Webhooks

    async with _webhook_store(args) as store:
        attempts = await Webhooks(store).log(args.tenant, args.webhook_id, limit=args.limit)
    if attempts is None:
        print(
            f"sessionstore webhooks: tenant {args.tenant} has no webhook {args.webhook_id}",
            file=sys.stderr,
        )
        return 1
    for attempt in attempts:
        status = "-" if attempt.status is None else attempt.status
        print(
            f"{isoformat(attempt.at)}\t{attempt.event_id}\t{attempt.outcome}\t{status}\t"
            f"{attempt.duration_ms:g}ms\t{attempt.error or ''}".rstrip("\t")
        )
    return 0


async def webhooks_run(args: argparse.Namespace) -> int:
    """Deliver until SIGINT or SIGTERM; then give the leases back, so another deliverer
    continues at once."""
    from .webhooks import Deliverer

    async with _webhook_store(args) as store:
        await _answering(store, args.redis_url, args.wait)
        deliverer = Deliverer(
            store,
            allow_private=args.allow_private_destinations,
            allow_metadata=args.allow_metadata_destinations,
            timeout=args.timeout,
        )
        task = asyncio.create_task(deliverer.run())
        loop = asyncio.get_running_loop()
        for signal_number in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signal_number, task.cancel)
        log.info("delivering webhooks as %s", deliverer.name)
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return 0


# -- arguments --------------------------------------------------------------------------------


LOG_LEVELS = ("debug", "info", "warning", "error")


def rate(text: str) -> Rate:
    return Rate.parse(text)


def port(text: str) -> int:
    """A TCP port to listen on; 0 lets the system pick a free one."""
    if not text.isdigit() or int(text) > 65_535:
        raise argparse.ArgumentTypeError("a port number from 0 to 65535")
    return int(text)


def seconds_from(least: float) -> Callable[[str], float]:
    """An argparse type: a number of seconds from ``least`` to a day (the sweep's interval
    from 1, since a busy loop is never what was meant; a wait for Redis from 0)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not least <= value <= 86_400:  # NaN too
            raise argparse.ArgumentTypeError(f"a number of seconds from {least:g} to 86400")
        return value

    return parse


class _Parser(argparse.ArgumentParser):
    """Every usage mistake is one line on stderr and exit status 2, like the others here."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message}\n")


def _option(
    parser: argparse.ArgumentParser, flag: str, default: object, text: str, **how: Any
) -> None:
    """An option that can also come from the environment: --redis-url from
    SESSIONSTORE_REDIS_URL; the flag wins over the variable, the variable over the default."""
    variable = "SESSIONSTORE_" + flag.removeprefix("--").replace("-", "_").upper()
    value = os.environ.get(variable, default)
    if how.get("action") == "store_true":
        value = str(value).lower() in ("1", "true", "yes", "on")
    shown = "none" if default is None else default
    parser.add_argument(flag, default=value, help=f"{text} (${variable}; default: {shown})", **how)


def _store_options(parser: argparse.ArgumentParser) -> None:
    _option(parser, "--redis-url", None, "redis://, rediss://, unix:// or redis+cluster:// URL")
    _option(parser, "--prefix", StoreConfig().prefix, "Redis key prefix")


def _allow_private(parser: argparse.ArgumentParser) -> None:
    _option(
        parser,
        "--allow-private-destinations",
        False,
        "let webhooks reach private and loopback addresses",
        action="store_true",
    )
    _option(
        parser,
        "--allow-metadata-destinations",
        False,
        "let webhooks reach link-local addresses (169.254.0.0/16, fe80::/10), where cloud "
        "metadata services answer, and other known metadata addresses",
        action="store_true",
    )


def _webhook_parsers(commands: Any) -> None:
    webhooks = commands.add_parser(
        "webhooks", help="POST session events to endpoints (Standard Webhooks)"
    )
    actions = webhooks.add_subparsers(required=True, metavar="ACTION")
    add = actions.add_parser(
        "add", help="register an endpoint; prints its id and signing secret (shown once)"
    )
    add.add_argument("--tenant", required=True)
    add.add_argument("--url", required=True, help="http:// or https:// URL to POST to")
    add.add_argument(
        "--types",
        nargs="+",
        metavar="TYPE",
        help="only these event types (default: every type), e.g. session.revoked",
    )
    _allow_private(add)
    add.set_defaults(run=webhooks_add)
    listing = actions.add_parser("list", help="a tenant's webhooks and their state")
    listing.add_argument("--tenant", required=True)
    listing.set_defaults(run=webhooks_list)
    remove = actions.add_parser("remove", help="remove a webhook at once")
    remove.add_argument("--tenant", required=True)
    remove.add_argument("webhook_id")
    remove.set_defaults(run=webhooks_remove)
    attempts = actions.add_parser("log", help="a webhook's delivery attempts, newest first")
    attempts.add_argument("--tenant", required=True)
    attempts.add_argument("webhook_id")
    attempts.add_argument("--limit", type=int, default=20, help="how many (default: 20)")
    attempts.set_defaults(run=webhooks_log)
    run = actions.add_parser(
        "run", help="deliver every tenant's webhooks (beside others running, or serve --events)"
    )
    _allow_private(run)
    _option(run, "--timeout", 10.0, "seconds per delivery attempt", type=float)
    _option(run, "--log-level", "info", "how much to log", choices=LOG_LEVELS)
    _option(
        run,
        "--wait",
        0.0,
        "seconds to keep trying a Redis that does not answer at start-up",
        type=seconds_from(0),
    )
    _option(run, "--log-format", "text", "text, or json", choices=("text", "json"))
    run.set_defaults(run=webhooks_run)
    for action in (add, listing, remove, attempts, run):
        _store_options(action)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sessionstore", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve_parser = commands.add_parser(
        "serve",
        help="serve the admin REST API",
        description="Serve the admin REST API. Every option can also be set in the environment "
        "variable named beside it.",
    )
    _store_options(serve_parser)
    _option(serve_parser, "--host", "127.0.0.1", "address to listen on")
    _option(serve_parser, "--port", 8080, "port; 0 picks a free one", type=port)
    _option(
        serve_parser,
        "--wait",
        0.0,
        "seconds to keep trying a Redis that does not answer at start-up",
        type=seconds_from(0),
    )
    _option(
        serve_parser,
        "--demo",
        False,
        "embedded store only: seed tenant acme-corp and print an API key",
        action="store_true",
    )
    _option(
        serve_parser,
        "--embedded",
        False,
        "serve the embedded in-process store when no Redis URL is given (its state lives "
        "in this one process)",
        action="store_true",
    )
    _option(
        serve_parser,
        "--events",
        False,
        "record session events (created, revoked, evicted, expired, mfa_verified), serve "
        "them at /admin/events and deliver them to webhooks",
        action="store_true",
    )
    _allow_private(serve_parser)
    _option(
        serve_parser,
        "--sweep-every",
        60.0,
        "with --events: seconds between sweeps that record expiries nobody asked about",
        type=seconds_from(1),
    )
    _option(
        serve_parser,
        "--near-cache-size",
        0,
        "validate up to N hot sessions from memory, kept in step by Redis pub/sub (0: off)",
        type=int,
    )
    _option(
        serve_parser,
        "--metrics-port",
        0,
        "serve Prometheus metrics at http://HOST:PORT/metrics (0: off)",
        type=port,
    )
    defaults = RateLimits()
    for option, default, what in [
        ("--rate-per-key", defaults.per_key, "requests per API key"),
        ("--rate-per-tenant", defaults.per_tenant, "requests per tenant, all its keys together"),
        ("--rate-failed-auth", defaults.failed_auth_per_ip, "failed authentications per client"),
    ]:
        _option(serve_parser, option, default, what, type=rate, metavar="N/SECONDS")
    _option(serve_parser, "--log-level", "info", "how much to log", choices=LOG_LEVELS)
    _option(
        serve_parser,
        "--log-format",
        "text",
        "text, or json for one JSON object per line",
        choices=("text", "json"),
    )
    serve_parser.set_defaults(run=serve)

    apikey = commands.add_parser("apikey", help="mint, list and revoke admin API keys")
    actions = apikey.add_subparsers(required=True, metavar="ACTION")
    create = actions.add_parser("create", help="mint a key for a tenant (printed once)")
    create.add_argument("--tenant", required=True)
    create.set_defaults(run=apikey_create)
    listing = actions.add_parser("list", help="a tenant's key ids")
    listing.add_argument("--tenant", required=True)
    listing.set_defaults(run=apikey_list)
    revoke = actions.add_parser("revoke", help="revoke a key at once")
    revoke.add_argument("key_id")
    revoke.set_defaults(run=apikey_revoke)
    for action in (create, listing, revoke):
        _store_options(action)

    events = commands.add_parser("events", help="read session events")
    event_actions = events.add_subparsers(required=True, metavar="ACTION")
    tail = event_actions.add_parser(
        "tail", help="print each new event of a tenant as one JSON line, as it comes"
    )
    tail.add_argument("--tenant", required=True)
    tail.add_argument("--after", default=None, help="an event id: start after it (default: now)")
    _store_options(tail)
    tail.set_defaults(run=events_tail)
    for verb, what in [
        ("on", "record events in every store under the prefix (each follows within 10 s)"),
        ("off", "stop recording events (what is recorded stays until its retention ends)"),
        ("status", "print on or off"),
    ]:
        switch = event_actions.add_parser(verb, help=what)
        _store_options(switch)
        switch.set_defaults(run=events_switch, action=verb)
    _webhook_parsers(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as done:  # --help, or a usage mistake (one line, _Parser.error)
        return done.code if isinstance(done.code, int) else 2
    _logs.configure(getattr(args, "log_level", "warning"), getattr(args, "log_format", "text"))
    try:
        return int(asyncio.run(args.run(args)))
    except InvalidArgument as error:
        print(f"sessionstore: {error}", file=sys.stderr)
        return 2
    except StoreUnavailable as error:
        print(f"sessionstore: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except ModuleNotFoundError as missing:  # an extra that is not installed
        hint = "" if "pip install" in str(missing) else "; pip install 'sessionstore[server]'"
        print(f"sessionstore: {missing}{hint}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
