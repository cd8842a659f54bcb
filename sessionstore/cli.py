"""The ``sessionstore`` command line, on click: only its surface (commands, options, messages).

    sessionstore serve [--redis-url URL | --embedded | --demo] [--host H] [--port P] [...]
    sessionstore apikey create|list --tenant acme-corp --redis-url URL
    sessionstore apikey revoke KEY_ID --redis-url URL
    sessionstore events tail --tenant acme-corp [--after EVENT_ID] --redis-url URL
    sessionstore events on|off|status --redis-url URL
    sessionstore webhooks add --tenant acme-corp --url URL [--types TYPE ...] --redis-url URL
    sessionstore webhooks list|remove|log --tenant acme-corp [WEBHOOK_ID] --redis-url URL
    sessionstore webhooks run [--allow-private-destinations] [--wait SECONDS] --redis-url URL

What ``serve`` composes is server.py, the demo's data demo.py. Every command but ``serve``
works on the deployment's Redis and needs its URL (``--redis-url`` or
$SESSIONSTORE_REDIS_URL); ``serve`` needs one unless ``--embedded`` or ``--demo`` asks for the
in-process store. An option named with a variable in ``--help`` reads it when not given.

Exit status: 0 done; 1 Redis failed (the message names it by host and port and says what
happened) or the key or webhook named does not exist; 2 a mistake on the command line, one
line on stderr, found before Redis is asked; 130 interrupted; 141 the reader of the output
went away (``| head``), said nothing, as for any program a closed pipe stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

try:
    import click
except ModuleNotFoundError:  # the server extra is missing: one line, like any refusal here
    sys.stderr.write(
        "sessionstore: the command line needs click: pip install 'sessionstore[server]'\n"
    )
    raise SystemExit(2) from None
from click.core import ParameterSource
from redis.exceptions import RedisClusterException, RedisError

from . import _connection, _logs, server
from ._core import inputs
from ._core.keys import LAYOUT
from ._core.kinds import EventType
from .admin.apikeys import ApiKeys
from .admin.ratelimit import Rate, RateLimits
from .aio import AsyncSessionStore
from .config import StoreConfig
from .errors import InvalidArgument, StoreUnavailable
from .model import isoformat

__all__ = ["cli", "main"]

URL_VARIABLE = "SESSIONSTORE_REDIS_URL"
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")
USAGE, FAILED, INTERRUPTED, CLOSED_PIPE = 2, 1, 130, 141
_EVENT_TYPES = ", ".join(EventType.type_names())
_PORT_TEXT = re.compile(r"[0-9]{1,5}")
# Why each command refuses to run without the deployment's Redis, in its error and --help.
WHY_KEYS = "API keys must outlive this command, so they live in the deployment's Redis"
WHY_EVENTS = "events live in the Redis that records them"
WHY_SETTING = "the setting lives in the deployment's Redis"
WHY_LAYOUT = "the keys to migrate live in the deployment's Redis"
WHY_WEBHOOKS = "webhooks live in the Redis that records the events"

# What click's option decorators are: a command function in, the same function out.
Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


# -- values -----------------------------------------------------------------------------------

if TYPE_CHECKING:
    _ParamType = click.ParamType[Any, Any]  # generic from click 8.4 on
else:
    _ParamType = click.ParamType


class _Port(_ParamType):
    """A TCP port to listen on; 0 lets the system pick a free one."""

    name = "PORT"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        if not _PORT_TEXT.fullmatch(str(value)) or int(value) > 65_535:
            self.fail("a port number from 0 to 65535", param, ctx)
        return int(value)


class _Seconds(_ParamType):
    """A number of seconds from ``least`` to ``most`` (the sweep's interval from 1, since a busy
    loop is never what was meant; a wait for Redis from 0)."""

    name = "SECONDS"

    def __init__(self, least: float, most: float = 86_400) -> None:
        self.least, self.most = least, most

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            seconds = math.nan
        if not self.least <= seconds <= self.most:  # NaN too
            self.fail(f"a number of seconds from {self.least:g} to {self.most:g}", param, ctx)
        return seconds


class _Checked(_ParamType):
    """Text the library itself checks (``check``): its InvalidArgument is the option's error,
    so the command line and the API refuse the same values in the same words."""

    def __init__(self, name: str, check: Callable[[str], Any]) -> None:
        self.name = name
        self.check = check

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value  # a default, already of its type
        try:
            return self.check(value)
        except InvalidArgument as error:
            self.fail(str(error), param, ctx)


class _OneOf(_ParamType):
    """One of a few words; a mistake says ``invalid choice: 'loud' (choose from ...)``."""

    name = "WORD"

    def __init__(self, *choices: str) -> None:
        self.choices = choices

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "[" + "|".join(self.choices) + "]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        if value not in self.choices:
            self.fail(
                f"invalid choice: {value!r} (choose from {', '.join(self.choices)})", param, ctx
            )
        return str(value)


def _prefix(text: str) -> str:
    return StoreConfig(prefix=text).prefix


_URL = _Checked("URL", _connection.check_url)
_TENANT = _Checked("TENANT", inputs.tenant)
_PREFIX = _Checked("PREFIX", _prefix)
_RATE = _Checked("N/SECONDS", Rate.parse)


# -- options ----------------------------------------------------------------------------------


def _variable(flag: str) -> str:
    """The variable an option reads: --redis-url reads SESSIONSTORE_REDIS_URL."""
    return "SESSIONSTORE_" + flag.removeprefix("--").replace("-", "_").upper()


def _option(flag: str, **how: Any) -> Decorator:
    """An option that can also come from the environment: the flag wins over the variable,
    the variable over the default; --help shows both."""
    how = {"show_default": True, **how}
    return click.option(flag, envvar=_variable(flag), show_envvar=True, **how)


def _flag(flag: str, text: str) -> Decorator:
    """An on/off option; its variable says 1, true, yes or on (0, false, no, off: off)."""
    return _option(flag, is_flag=True, default=False, show_default=False, help=text)


def _options(*decorators: Decorator) -> Decorator:
    """Several options at once, listed in --help in the order given."""

    def apply(function: Callable[..., Any]) -> Callable[..., Any]:
        for decorator in reversed(decorators):
            function = decorator(function)
        return function

    return apply


def _required(why: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def check(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is None:
            raise click.UsageError(f"give --redis-url or set ${URL_VARIABLE}: {why}", ctx)
        return value

    return check


_URL_FORMS = "redis://, rediss://, unix:// or redis+cluster:// URL"


def _store_options(why: str | None) -> Decorator:
    """--redis-url and --prefix; the URL is required, for ``why``, unless ``why`` is None
    (serve, which has the embedded store to fall back on when asked)."""
    if why is None:
        url = _option(
            "--redis-url",
            type=_URL,
            help=f"{_URL_FORMS}; required unless --embedded or --demo",
        )
    else:
        url = _option(
            "--redis-url", type=_URL, callback=_required(why), help=f"{_URL_FORMS}; required: {why}"
        )
    prefix = _option(
        "--prefix", type=_PREFIX, default=StoreConfig().prefix, help="Redis key prefix"
    )
    return _options(url, prefix)


_tenant = click.option("--tenant", type=_TENANT, required=True, help="the tenant, e.g. acme-corp")
_wait = _option(
    "--wait",
    type=_Seconds(0),
    default=0.0,
    help="seconds to keep trying a Redis that does not answer at start-up",
)
_destinations = _options(
    _flag("--allow-private-destinations", "let webhooks reach private and loopback addresses"),
    _flag(
        "--allow-metadata-destinations",
        "let webhooks reach link-local addresses (169.254.0.0/16, fe80::/10), where cloud "
        "metadata services answer, and other known metadata addresses",
    ),
)
_logging = _options(
    _option("--log-level", type=_OneOf(*LOG_LEVELS), default="info", help="how much to log"),
    _option(
        "--log-format",
        type=_OneOf(*LOG_FORMATS),
        default="text",
        help="text, or json for one JSON object per line",
    ),
)


# -- running a command ----------------------------------------------------------------------------


class _OutputClosed(Exception):
    """The reader of stdout went away (``| head``): the command ends, saying nothing."""


def _run(work: Coroutine[Any, Any, int]) -> int:
    """Run a command's coroutine and flush its output here, so that a reader gone away is
    found while the command can still end quietly (not at the interpreter's exit)."""
    try:
        code = asyncio.run(work)
        sys.stdout.flush()
    except BrokenPipeError:
        raise _OutputClosed from None
    return code


@dataclass(frozen=True, slots=True)
class _Deployment:
    """The deployment's Redis as a command's options name it."""

    url: str
    prefix: str
    wait: float = 0.0
    hint: str = ""  # said when Redis does not answer (commands that have --wait)

    @contextlib.asynccontextmanager
    async def store(self) -> AsyncIterator[AsyncSessionStore]:
        """A store on it, once Redis answers; any Redis failure inside is RedisFailure, in
        words that name this Redis. Its config records nothing of its own: whether events are
        on is the deployment's setting, and reading or delivering them must not turn it on."""
        store = AsyncSessionStore.from_url(self.url, config=StoreConfig(prefix=self.prefix))
        try:
            async with store:
                await server.answering(store, self.url, self.wait, hint=self.hint)
                yield store
        except _connection.RedisFailure:
            raise
        except (StoreUnavailable, RedisError, RedisClusterException) as error:
            raise _connection.RedisFailure(_connection.explain(error, self.url)) from error


@dataclass(frozen=True, slots=True)
class _Allowances:
    """Which webhook destinations beyond the public internet the operator allows."""

    private: bool  # --allow-private-destinations
    metadata: bool  # --allow-metadata-destinations


def _not_found(command: str, what: str) -> int:
    print(f"sessionstore {command}: {what}", file=sys.stderr)
    return FAILED


# -- the commands -------------------------------------------------------------------------------


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    no_args_is_help=False,
)
def cli() -> None:
    """Login sessions in Redis: serve the admin API, manage its API keys, read session events
    and deliver them to webhooks."""


@cli.command(
    epilog="Every option can also be set in the environment variable named beside it; a flag "
    "wins over its variable."
)
@_options(
    _store_options(None),
    _option("--host", default="127.0.0.1", help="address to listen on"),
    _option("--port", type=_Port(), default=8080, help="port; 0 picks a free one"),
    _wait,
    _flag("--demo", "embedded store only: seed tenant acme-corp and print an API key"),
    _flag(
        "--embedded",
        "serve the embedded in-process store when no Redis URL is given (its state lives in "
        "this one process)",
    ),
    _flag(
        "--events",
        f"record session events ({_EVENT_TYPES}), serve them at /admin/events and deliver "
        "them to webhooks",
    ),
    _destinations,
    _option(
        "--sweep-every",
        type=_Seconds(1),
        default=60.0,
        help="with --events: seconds between sweeps that record expiries nobody asked about",
    ),
    _option(
        "--near-cache-size",
        type=click.IntRange(0, 1_000_000),
        default=0,
        help="validate up to N hot sessions from memory, kept in step by Redis pub/sub (0: off)",
    ),
    _option(
        "--metrics-port",
        type=_Port(),
        default=0,
        help="serve Prometheus metrics at http://HOST:PORT/metrics (0: off)",
    ),
    _option(
        "--rate-per-key", type=_RATE, default=RateLimits().per_key, help="requests per API key"
    ),
    _option(
        "--rate-per-tenant",
        type=_RATE,
        default=RateLimits().per_tenant,
        help="requests per tenant, all its keys together",
    ),
    _option(
        "--rate-failed-auth",
        type=_RATE,
        default=RateLimits().failed_auth_per_ip,
        help="failed authentications per client address",
    ),
    _logging,
)
def serve(log_level: str, log_format: str, **settings: Any) -> int:
    """Serve the admin REST API and its console.

    The API at /t/TENANT/api/v1/admin/..., the console at /console/, until SIGINT or SIGTERM;
    with --events (or --demo) also the webhook deliverer and the sweep for quiet expiries."""
    _logs.configure(log_level, log_format)
    return _run(_serve(server.ServerSettings(**settings)))


async def _serve(settings: server.ServerSettings) -> int:
    await server.serve(settings)
    return 0


# apikey


@cli.group(no_args_is_help=False)  # a missing action is one line, as any mistake
def apikey() -> None:
    """Mint, list and revoke admin API keys."""


@apikey.command("create")
@_options(_tenant, _store_options(WHY_KEYS))
def apikey_create(tenant: str, redis_url: str, prefix: str) -> int:
    """Mint a key for a tenant: printed once, on stdout."""
    return _run(_apikey_create(tenant, _Deployment(redis_url, prefix)))


async def _apikey_create(tenant: str, deployment: _Deployment) -> int:
    async with deployment.store() as store:
        record, key = await ApiKeys.of(store).create(tenant)
    print(key)
    print(
        f"API key {record.id} for tenant {record.tenant}. It is shown once: store it now.",
        file=sys.stderr,
    )
    return 0


@apikey.command("list")
@_options(_tenant, _store_options(WHY_KEYS))
def apikey_list(tenant: str, redis_url: str, prefix: str) -> int:
    """A tenant's key ids and when each was minted (never the keys)."""
    return _run(_apikey_list(tenant, _Deployment(redis_url, prefix)))


async def _apikey_list(tenant: str, deployment: _Deployment) -> int:
    async with deployment.store() as store:
        records = await ApiKeys.of(store).list(tenant)
    for record in records:
        created = "" if record.created_at is None else isoformat(record.created_at)
        print(f"{record.id}\t{record.tenant}\t{created}")
    return 0


@apikey.command("revoke")
@click.argument("key_id")
@_store_options(WHY_KEYS)
def apikey_revoke(key_id: str, redis_url: str, prefix: str) -> int:
    """Revoke a key at once (exit status 1 if there is no such key)."""
    return _run(_apikey_revoke(key_id, _Deployment(redis_url, prefix)))


async def _apikey_revoke(key_id: str, deployment: _Deployment) -> int:
    async with deployment.store() as store:
        revoked = await ApiKeys.of(store).revoke(key_id)
    if not revoked:
        return _not_found("apikey", f"no API key {key_id}")
    print(f"revoked {key_id}")
    return 0


# events


@cli.group(no_args_is_help=False)
def events() -> None:
    """Read session events, and turn their recording on or off."""


@events.command("tail")
@_options(
    _tenant,
    click.option("--after", default=None, help="an event id: start after it (default: now)"),
    _store_options(WHY_EVENTS),
)
def events_tail(tenant: str, after: str | None, redis_url: str, prefix: str) -> int:
    """Print each new event of a tenant as one JSON line, as it comes (Ctrl-C stops)."""
    return _run(_events_tail(tenant, after, _Deployment(redis_url, prefix)))


async def _events_tail(tenant: str, after: str | None, deployment: _Deployment) -> int:
    async with deployment.store() as store:
        async for event in store.tail(tenant, after=after):
            print(json.dumps(event.to_dict(), separators=(",", ":")), flush=True)
    return 0


def _switch(verb: str, text: str) -> click.Command:
    """``events on``, ``off`` or ``status``: each prints the setting as it then is."""

    @_store_options(WHY_SETTING)
    def switch(redis_url: str, prefix: str) -> int:
        return _run(_events_switch(verb, _Deployment(redis_url, prefix)))

    return click.command(verb, help=text)(switch)


async def _events_switch(verb: str, deployment: _Deployment) -> int:
    async with deployment.store() as store:
        if verb == "on":
            await store.enable_events()
        elif verb == "off":
            await store.disable_events()
        print("on" if await store.events_enabled() else "off")
    return 0


for _verb, _text in [
    ("on", "Record events in every store under the prefix (each follows within 10 s)."),
    ("off", "Stop recording events (what is recorded stays until its retention ends)."),
    ("status", "Print on or off."),
]:
    events.add_command(_switch(_verb, _text))


@cli.command()
@_store_options(WHY_LAYOUT)
def migrate(redis_url: str, prefix: str) -> int:
    """Bring the prefix's keys to this version's layout, in place: stop the processes of the
    older version first (they refuse a migrated prefix), then start the new ones at any time.
    Safe to stop and run again; it prints what it did."""
    return _run(_migrate(_Deployment(redis_url, prefix)))


async def _migrate(deployment: _Deployment) -> int:
    async with deployment.store() as store:
        buckets = await store.migrate()
    print(f"layout {LAYOUT}: {buckets} buckets checked" if buckets else "nothing to migrate")
    return 0


# webhooks


@cli.group(no_args_is_help=False)
def webhooks() -> None:
    """POST session events to endpoints (Standard Webhooks)."""


class _ValuesUpToNextOption(click.Command):
    """A command whose ``--types`` takes every value up to the next option, as in
    ``--types session.revoked session.created`` (a click option takes one value a time)."""

    spread = ("--types",)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, _spread(args, self.spread))


def _spread(args: list[str], flags: Sequence[str]) -> list[str]:
    """``--types a b`` as ``--types a --types b``; nothing after ``--`` is touched."""
    spread: list[str] = []
    current = None
    for position, arg in enumerate(args):
        if arg == "--":
            return spread + args[position:]
        if arg.startswith("-"):
            current = arg if arg in flags else None
        elif current is not None and spread[-1] != current:
            spread.append(current)
        spread.append(arg)
    return spread


def _event_types(ctx: click.Context, param: click.Parameter, values: Any) -> Any:
    """The types named, comma-separated or not; None (every type) when none is named."""
    if not values:
        return None
    kinds = tuple(kind for text in values for kind in text.split(",") if kind)
    if not kinds or any(EventType.named(kind) is None for kind in kinds):
        raise click.BadParameter(f"event types are {_EVENT_TYPES}", ctx, param)
    return kinds


@webhooks.command("add", cls=_ValuesUpToNextOption)
@_options(
    _tenant,
    click.option("--url", required=True, help="http:// or https:// URL to POST to"),
    click.option(
        "--types",
        multiple=True,
        metavar="TYPE ...",
        callback=_event_types,
        help=f"only these event types, after one --types or comma-separated (default: every "
        f"type): {_EVENT_TYPES}",
    ),
    _destinations,
    _store_options(WHY_WEBHOOKS),
)
def webhooks_add(
    tenant: str,
    url: str,
    types: tuple[str, ...] | None,
    allow_private_destinations: bool,
    allow_metadata_destinations: bool,
    redis_url: str,
    prefix: str,
) -> int:
    """Register an endpoint; prints its id and signing secret (shown once)."""
    allowances = _Allowances(allow_private_destinations, allow_metadata_destinations)
    return _run(_webhooks_add(tenant, url, types, allowances, _Deployment(redis_url, prefix)))


async def _webhooks_add(
    tenant: str,
    url: str,
    types: tuple[str, ...] | None,
    allowances: _Allowances,
    deployment: _Deployment,
) -> int:
    from .webhooks.registry import Webhooks

    async with deployment.store() as store:
        registry = Webhooks(
            store, allow_private=allowances.private, allow_metadata=allowances.metadata
        )
        webhook, secret = await registry.add(tenant, url, types=types)
    print(f"{webhook.id}\t{secret}")
    print(
        f"Webhook {webhook.id} for tenant {webhook.tenant}: {webhook.url}. Its signing secret "
        "is shown once: store it now.",
        file=sys.stderr,
    )
    return 0


@webhooks.command("list")
@_options(_tenant, _store_options(WHY_WEBHOOKS))
def webhooks_list(tenant: str, redis_url: str, prefix: str) -> int:
    """A tenant's webhooks: id, url, types, cursor, state."""
    return _run(_webhooks_list(tenant, _Deployment(redis_url, prefix)))


async def _webhooks_list(tenant: str, deployment: _Deployment) -> int:
    from .webhooks.registry import Webhooks

    async with deployment.store() as store:
        found = await Webhooks(store).list(tenant)
    for webhook in found:
        kinds = ",".join(sorted(webhook.types)) if webhook.types else "*"
        state = webhook.state
        if webhook.disabled_reason:
            state += f" ({webhook.disabled_reason})"
        elif webhook.failing_since is not None:
            state += f" (failing since {isoformat(webhook.failing_since)})"
        print(f"{webhook.id}\t{webhook.url}\t{kinds}\t{webhook.cursor or '-'}\t{state}")
    return 0


@webhooks.command("remove")
@_options(_tenant, click.argument("webhook_id"), _store_options(WHY_WEBHOOKS))
def webhooks_remove(tenant: str, webhook_id: str, redis_url: str, prefix: str) -> int:
    """Remove a webhook at once (exit status 1 if the tenant has no such webhook)."""
    return _run(_webhooks_remove(tenant, webhook_id, _Deployment(redis_url, prefix)))


async def _webhooks_remove(tenant: str, webhook_id: str, deployment: _Deployment) -> int:
    from .webhooks.registry import Webhooks

    async with deployment.store() as store:
        removed = await Webhooks(store).remove(tenant, webhook_id)
    if not removed:
        return _not_found("webhooks", f"tenant {tenant} has no webhook {webhook_id}")
    print(f"removed {webhook_id}")
    return 0


@webhooks.command("log")
@_options(
    _tenant,
    click.argument("webhook_id"),
    click.option(
        "--limit",
        type=click.IntRange(1, inputs.MAX_LIMIT),
        default=20,
        show_default=True,
        help="how many",
    ),
    _store_options(WHY_WEBHOOKS),
)
def webhooks_log(tenant: str, webhook_id: str, limit: int, redis_url: str, prefix: str) -> int:
    """A webhook's delivery attempts, newest first: time, event, outcome, status, duration,
    error."""
    return _run(_webhooks_log(tenant, webhook_id, limit, _Deployment(redis_url, prefix)))


async def _webhooks_log(tenant: str, webhook_id: str, limit: int, deployment: _Deployment) -> int:
    from .webhooks.registry import Webhooks

    async with deployment.store() as store:
        attempts = await Webhooks(store).log(tenant, webhook_id, limit=limit)
    if attempts is None:
        return _not_found("webhooks", f"tenant {tenant} has no webhook {webhook_id}")
    for attempt in attempts:
        status = "-" if attempt.status is None else attempt.status
        print(
            f"{isoformat(attempt.at)}\t{attempt.event_id}\t{attempt.outcome}\t{status}\t"
            f"{attempt.duration_ms:g}ms\t{attempt.error or ''}".rstrip("\t")
        )
    return 0


@webhooks.command("run")
@_options(
    _destinations,
    _option(
        "--timeout",
        type=_Seconds(0.1, 3600),
        default=10.0,
        help="seconds per delivery attempt",
    ),
    _wait,
    _logging,
    _store_options(WHY_WEBHOOKS),
)
def webhooks_run(
    allow_private_destinations: bool,
    allow_metadata_destinations: bool,
    timeout: float,
    wait: float,
    log_level: str,
    log_format: str,
    redis_url: str,
    prefix: str,
) -> int:
    """Deliver every tenant's webhooks until SIGINT or SIGTERM, beside other deliverers (or
    serve --events); then give the leases back, so another deliverer continues at once."""
    _logs.configure(log_level, log_format)
    deployment = _Deployment(redis_url, prefix, wait=wait, hint=server.WAIT_HINT)
    allowances = _Allowances(allow_private_destinations, allow_metadata_destinations)
    return _run(_deliver(allowances, timeout, deployment))


async def _deliver(allowances: _Allowances, timeout: float, deployment: _Deployment) -> int:
    from .webhooks.delivery import Deliverer

    async with deployment.store() as store:
        deliverer = Deliverer(
            store,
            allow_private=allowances.private,
            allow_metadata=allowances.metadata,
            timeout=timeout,
        )
        task = asyncio.create_task(deliverer.run())
        loop = asyncio.get_running_loop()
        for signal_number in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signal_number, task.cancel)
        server.log.info("delivering webhooks as %s", deliverer.name)
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return 0


# -- main ---------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``sessionstore ARGV`` (the process's arguments when None) and return its exit
    status (see the module's docstring); every refusal is one line on stderr."""
    try:
        code = cli.main(
            args=None if argv is None else list(argv),
            prog_name="sessionstore",
            standalone_mode=False,
        )
    except click.UsageError as error:
        return _refuse(_usage_line(error), USAGE)
    except InvalidArgument as error:
        return _refuse(f"sessionstore: {error}", USAGE)
    except StoreUnavailable as error:  # RedisFailure: already names the Redis
        return _refuse(f"sessionstore: {error}", FAILED)
    except click.Abort:  # Ctrl-C, which click turns into Abort
        return INTERRUPTED
    except _OutputClosed:
        _discard_stdout()
        return CLOSED_PIPE
    except ModuleNotFoundError as missing:  # an extra that is not installed
        hint = "" if "pip install" in str(missing) else "; pip install 'sessionstore[server]'"
        return _refuse(f"sessionstore: {missing}{hint}", USAGE)
    return int(code or 0)


def _refuse(line: str, code: int) -> int:
    print(line, file=sys.stderr)
    return code


def _usage_line(error: click.UsageError) -> str:
    """click's word on a usage mistake, as one line: ``sessionstore serve: --port: ...``."""
    where = error.ctx.command_path if error.ctx is not None else "sessionstore"
    param = getattr(error, "param", None)
    if isinstance(error, click.BadParameter) and not isinstance(error, click.MissingParameter):
        told = f"{_named(param, error.ctx)}: {error.message}" if param else error.message
    else:
        told = error.format_message()
    return " ".join(f"{where}: {told}".split())


def _named(param: click.Parameter, ctx: click.Context | None) -> str:
    """``--port``, or ``--port ($SESSIONSTORE_PORT)`` when the value came from the variable."""
    name = param.opts[0] if isinstance(param, click.Option) else param.human_readable_name
    came_from = None if ctx is None or param.name is None else ctx.get_parameter_source(param.name)
    if came_from is ParameterSource.ENVIRONMENT and isinstance(param.envvar, str):
        name += f" (${param.envvar})"
    return name


def _discard_stdout() -> None:
    """After the reader went away, what is still buffered for it goes nowhere, so that the
    interpreter's last flush cannot fail loudly either."""
    with contextlib.suppress(OSError, ValueError):
        descriptor = sys.stdout.fileno()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, descriptor)
        os.close(devnull)


if __name__ == "__main__":
    sys.exit(main())
