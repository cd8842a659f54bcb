"""The console's pages: server-side HTML (Jinja2) over the same AsyncSessionStore as the API.

Every page is a plain link or form that works without JavaScript; ``static/console.js`` only
refreshes relative times. Every state-changing action is a POST that must come from this
console (``auth.cross_site``) and carry the console session's CSRF token; it answers 303 to
a page that says what was done. Every answer carries the headers of ``SECURITY_HEADERS``.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode

import jinja2
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..._core import inputs
from ...aio import AsyncSessionStore
from ...errors import InvalidArgument, InvalidCursor, StoreUnavailable
from ...model import isoformat
from ..apikeys import ApiKeys
from ..app import BodyRefused, read_body
from ..ratelimit import Limiter, RateLimits, retry_after
from . import auth, text
from .auth import ConsoleSession, ConsoleSessions, ConsoleSettings

log = logging.getLogger("sessionstore.console")

PAGE_SIZE: Final = 25
PREVIEW: Final = 10
EVENTS_PAGE: Final = 50
MAX_FORM_BYTES: Final = 4096
_FORM_TYPE: Final = "application/x-www-form-urlencoded"
# A place to go back to after an action: a path of this console, never another site's.
_BACK = re.compile(r"/(?![/\\])[^\s\\]{0,1000}")

CONTENT_SECURITY_POLICY: Final = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS: Final = (
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("cache-control", "no-store"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    ("permissions-policy", "camera=(), microphone=(), geolocation=()"),
)


class SecurityHeaders:
    """Pure ASGI middleware: the console's headers on every answer, pages, assets and errors."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS:
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


class ConsoleError(Exception):
    """An answer in words: a page with a title and a sentence, at ``status``."""

    def __init__(
        self, status: int, title: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message
        self.headers = dict(headers or {})


class SignInRequired(Exception):
    """A page that needs a signed-in console was asked for without one."""


def base(request: Request) -> str:
    """Where the console is mounted (``/console``, behind any root path)."""
    return str(request.scope.get("root_path", ""))


def local(path: str, **params: object) -> str:
    """A console path with its query, empty parameters left out."""
    query = urlencode({name: value for name, value in params.items() if value not in (None, "")})
    return path + (f"?{query}" if query else "")


def link(request: Request, path: str, **params: object) -> str:
    return base(request) + local(path, **params)


def redirect(request: Request, path: str, **params: object) -> RedirectResponse:
    return RedirectResponse(link(request, path, **params), status_code=303)


async def read_form(request: Request) -> dict[str, str]:
    """A small url-encoded form (no multipart parser needed: the console's forms are tiny).
    A field given twice is refused, so no field can be smuggled past the one read."""
    content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if content_type != _FORM_TYPE:
        raise ConsoleError(415, "Not a form", "The console only takes its own forms.")
    try:
        # The admin server's one body reader: a declared length over the limit is refused
        # unread, a streamed body once it passes the limit.
        body = await read_body(request, MAX_FORM_BYTES)
    except BodyRefused as refused:
        if refused.status_code == 413:
            raise ConsoleError(
                413, "Form too large", "That form sent more than the console takes."
            ) from None
        raise ConsoleError(
            400, "Unreadable form", "The console could not read that form."
        ) from None
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True, max_num_fields=16)
    except (UnicodeDecodeError, ValueError):
        raise ConsoleError(
            400, "Unreadable form", "The console could not read that form."
        ) from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise ConsoleError(400, "Unreadable form", "A field of that form came twice.")
        form[name] = value
    return form


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("sessionstore.admin.console", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        iso=isoformat,
        absolute=text.absolute,
        device=text.device,
        device_type=text.device_type,
        location=text.location,
        auth_method=text.auth_method,
        event_type=text.event_type,
        event_tone=text.event_tone,
        reason=text.reason,
        actor=text.actor,
    )
    env.globals.update(plural=text.plural, relative=text.relative)
    return env


class Console:
    """The console over ``store``: build with ``app()`` and mount it (``routes()`` does)."""

    def __init__(
        self,
        store: AsyncSessionStore,
        *,
        limits: RateLimits | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        settings: ConsoleSettings | None = None,
        per_key: Limiter | None = None,
    ) -> None:
        """``per_key``: the admin API's per-key buckets (create_app passes them), so a key's
        sign-ins, clicks and API calls spend one budget; a bucket of its own when None."""
        limits = limits or RateLimits()
        self.store = store
        self.api_keys = ApiKeys.of(store)
        self.sessions = ConsoleSessions(
            store.client,
            store.config.prefix,
            settings=settings,
            clock=wall_clock,
            failed=store.metrics.redis_failed if store.metrics is not None else None,
        )
        # Failed sign-ins at the API's failed-authentication rate, counted apart from the API.
        self.failed_signins = Limiter(limits.failed_auth_per_ip, clock=clock)
        self.per_key = Limiter(limits.per_key, clock=clock) if per_key is None else per_key
        self.wall_clock = wall_clock
        self.templates = Jinja2Templates(env=_environment())

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/", self.home),
                Route("/signin", self.signin_page, methods=["GET"]),
                Route("/signin", self.signin, methods=["POST"]),
                Route("/signout", self.signout, methods=["POST"]),
                Route("/sessions", self.tenant_sessions, methods=["GET"]),
                Route("/sessions/revoke", self.revoke_one, methods=["POST"]),
                Route("/users", self.user_lookup, methods=["GET"]),
                Route("/users/{user_id}", self.user_sessions, methods=["GET"]),
                Route("/users/{user_id}/revoke-all", self.revoke_all_page, methods=["GET"]),
                Route("/users/{user_id}/revoke-all", self.revoke_all, methods=["POST"]),
                Route("/ip/revoke", self.revoke_ip_page, methods=["GET"]),
                Route("/ip/revoke", self.revoke_ip, methods=["POST"]),
                Route("/events", self.events, methods=["GET"]),
                Mount(
                    "/static",
                    app=StaticFiles(packages=[("sessionstore.admin.console", "static")]),
                ),
            ],
            middleware=[Middleware(SecurityHeaders)],
            exception_handlers={
                ConsoleError: self.console_error,
                SignInRequired: self.sign_in_required,
                StoreUnavailable: self.store_unavailable,
                InvalidArgument: self.invalid_argument,
                HTTPException: self.http_error,
                Exception: self.server_error,
            },
        )

    # -- rendering ---------------------------------------------------------------------------

    def render(
        self,
        request: Request,
        template: str,
        context: dict[str, Any],
        *,
        session: ConsoleSession | None = None,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        now = datetime.fromtimestamp(self.wall_clock(), UTC)
        values = {
            "base": base(request),
            "session": session,
            "now": now,
            "link": lambda path, **params: link(request, path, **params),
            "flash": None,
            "errors": {},
            "problem": None,
            "nav": None,
            **context,
        }
        return self.templates.TemplateResponse(
            request, template, values, status_code=status, headers=headers
        )

    async def page(
        self,
        request: Request,
        session: ConsoleSession,
        template: str,
        context: dict[str, Any],
        *,
        status: int = 200,
    ) -> Response:
        """A signed-in page, with the message left by the last action."""
        flash = await self.sessions.take_flash(session)
        return self.render(
            request, template, {**context, "flash": flash}, session=session, status=status
        )

    # -- who is asking -----------------------------------------------------------------------

    async def current(self, request: Request) -> ConsoleSession | None:
        return await self.sessions.load(auth.cookie_value(request))

    async def signed_in(self, request: Request) -> ConsoleSession:
        session = await self.current(request)
        if session is None:
            raise SignInRequired
        self.charge(session)
        return session

    async def authorised_post(self, request: Request) -> tuple[ConsoleSession, dict[str, str]]:
        """The form of a state-changing request, from this console, with its CSRF token."""
        form = await read_form(request)
        if auth.cross_site(request):
            raise ConsoleError(
                403,
                "Refused",
                "That form was sent from another site. Use the console's own pages.",
            )
        session = await self.current(request)
        if session is None:
            raise ConsoleError(
                403,
                "You are signed out",
                "Nothing was changed: your console session has ended. Sign in again, then "
                "repeat the action.",
            )
        if not auth.same_token(form.get("csrf", ""), session.csrf):
            raise ConsoleError(
                403,
                "This form has expired",
                "Nothing was changed: the form did not carry this console session's token. "
                "Reload the page and try again.",
            )
        self.charge(session)
        return session, form

    def charge(self, session: ConsoleSession) -> None:
        self.charge_key(session.key_id)

    def charge_key(self, key_id: str) -> None:
        """Spend a token of the key's bucket (the API's): 429 with Retry-After when empty."""
        wait = self.per_key.acquire(key_id)
        if wait:
            raise ConsoleError(
                429,
                "Too many requests",
                f"This API key has made too many requests. Try again in {retry_after(wait)} s.",
                {"Retry-After": retry_after(wait)},
            )

    # -- signing in and out --------------------------------------------------------------------

    async def home(self, request: Request) -> Response:
        session = await self.current(request)
        return redirect(request, "/sessions" if session else "/signin")

    async def signin_page(self, request: Request) -> Response:
        if await self.current(request) is not None:
            return redirect(request, "/sessions")
        signed_out = "signed-out" in request.query_params
        return self.render(request, "signin.html", {"tenant": "", "signed_out": signed_out})

    async def signin(self, request: Request) -> Response:
        form = await read_form(request)
        if auth.cross_site(request):
            raise ConsoleError(403, "Refused", "Sign in from the console's own sign-in page.")
        tenant = form.get("tenant", "").strip()
        key = form.get("api_key", "").strip()
        errors = {}
        if not tenant:
            errors["tenant"] = "Enter your tenant, such as acme-corp."
        else:
            try:
                inputs.tenant(tenant)
            except InvalidArgument:
                errors["tenant"] = text.TENANT_HELP
        if not key:
            errors["api_key"] = "Enter an API key: it starts with sk_live_."
        context: dict[str, Any] = {"tenant": tenant, "signed_out": False, "errors": errors}
        if errors:
            return self.render(request, "signin.html", context, status=422)
        record = await self.api_keys.verify(key)
        if record is None or record.tenant != tenant:
            client = request.client.host if request.client else "unknown"
            log.info("console sign-in refused: tenant %s, from %s", tenant, client)
            wait = self.failed_signins.acquire(client)
            if wait:
                raise ConsoleError(
                    429,
                    "Too many failed sign-ins",
                    f"Too many failed sign-ins from your address. Try again in "
                    f"{retry_after(wait)} s.",
                    {"Retry-After": retry_after(wait)},
                )
            context["problem"] = (
                "That tenant and API key do not match a live API key. Check both, or ask for "
                "a new key (sessionstore apikey create)."
            )
            return self.render(request, "signin.html", context, status=401)
        # A sign-in is a request of the key like any other (and it leaves a record in Redis):
        # charged before anything is written.
        self.charge_key(record.id)
        previous = await self.current(request)
        if previous is not None:
            await self.sessions.end(previous)
        value = await self.sessions.start(record, key)
        log.info("console sign-in: tenant %s, API key %s", record.tenant, record.id)
        response = redirect(request, "/sessions")
        auth.set_cookie(response, request, value, base(request))
        return response

    async def signout(self, request: Request) -> Response:
        session, _ = await self.authorised_post(request)
        await self.sessions.end(session)
        response = redirect(request, "/signin", **{"signed-out": "1"})
        auth.clear_cookies(response, base(request))
        return response

    # -- the tenant's sessions ------------------------------------------------------------------

    async def tenant_sessions(self, request: Request) -> Response:
        session = await self.signed_in(request)
        user_text = request.query_params.get("user", "").strip()
        ip_text = request.query_params.get("ip", "").strip()
        cursor = request.query_params.get("cursor") or None
        errors: dict[str, str] = {}
        user_id = _user_id(user_text, errors, "user") if user_text else None
        ip = _ip(ip_text, errors, "ip") if ip_text else None
        context: dict[str, Any] = {
            "user": user_text,
            "ip": ip_text,
            "filtered_ip": ip,
            "cursor": cursor,
            "back": local("/sessions", user=user_text, ip=ip_text, cursor=cursor),
            "errors": errors,
            "page": None,
            "problem": None,
        }
        if errors:
            return await self.page(request, session, "sessions.html", context, status=422)
        try:
            context["page"] = await self.store.list_sessions(
                session.tenant, user_id=user_id, ip_address=ip, limit=PAGE_SIZE, cursor=cursor
            )
        except InvalidCursor:
            context["problem"] = (
                "That page link is no longer valid: start again from the first page."
            )
            return await self.page(request, session, "sessions.html", context, status=422)
        return await self.page(request, session, "sessions.html", context)

    async def revoke_one(self, request: Request) -> Response:
        session, form = await self.authorised_post(request)
        try:
            user_id = inputs.user_id_text(form.get("user_id", ""))
            session_id = inputs.session_id(form.get("session_id", ""))
        except InvalidArgument:
            raise ConsoleError(
                400, "Not a session", "That form did not name a session to revoke."
            ) from None
        revoked = await self.store.revoke(
            session.tenant, user_id, session_id, actor=_actor(session)
        )
        log.info(
            "console: revoke %s of user %d (tenant %s, key %s): %s",
            session_id, user_id, session.tenant, session.key_id, revoked,
        )  # fmt: skip
        await self.sessions.set_flash(
            session,
            f"Revoked session {session_id} of user {user_id}."
            if revoked
            else f"Session {session_id} had already ended: nothing to revoke.",
        )
        back = form.get("back", "")
        return redirect(request, back if _BACK.fullmatch(back) else "/sessions")

    # -- a user's sessions ----------------------------------------------------------------------

    async def user_lookup(self, request: Request) -> Response:
        session = await self.signed_in(request)
        user_text = request.query_params.get("user", "").strip()
        errors: dict[str, str] = {}
        if user_text:
            user_id = _user_id(user_text, errors, "user")
            if user_id is not None:
                return redirect(request, f"/users/{user_id}")
        context = {"user": user_text, "errors": errors}
        return await self.page(
            request, session, "user_lookup.html", context, status=422 if errors else 200
        )

    async def user_sessions(self, request: Request) -> Response:
        session = await self.signed_in(request)
        user_text = request.path_params["user_id"]
        errors: dict[str, str] = {}
        user_id = _user_id(user_text, errors, "user")
        if user_id is None:
            context = {"user": user_text, "errors": errors}
            return await self.page(request, session, "user_lookup.html", context, status=422)
        sessions = await self.store.list_user_sessions(session.tenant, user_id)
        context = {"user_id": user_id, "sessions": sessions}
        return await self.page(request, session, "user.html", context)

    async def revoke_all_page(self, request: Request) -> Response:
        session = await self.signed_in(request)
        user_id = _path_user_id(request)
        sessions = await self.store.list_user_sessions(session.tenant, user_id)
        context = {"user_id": user_id, "sessions": sessions}
        return await self.page(request, session, "confirm_user.html", context)

    async def revoke_all(self, request: Request) -> Response:
        session, _ = await self.authorised_post(request)
        user_id = _path_user_id(request)
        revoked = await self.store.revoke_all(session.tenant, user_id, actor=_actor(session))
        log.info(
            "console: revoke all %d of user %d (tenant %s, key %s)",
            revoked, user_id, session.tenant, session.key_id,
        )  # fmt: skip
        await self.sessions.set_flash(
            session, f"Revoked {text.plural(revoked, 'session')} of user {user_id}."
        )
        return redirect(request, f"/users/{user_id}")

    # -- every session from an IP ---------------------------------------------------------------

    async def revoke_ip_page(self, request: Request) -> Response:
        """The IP form, then the confirmation step with the count of what would go."""
        session = await self.signed_in(request)
        ip_text = request.query_params.get("ip", "").strip()
        errors: dict[str, str] = {}
        ip = _ip(ip_text, errors, "ip") if ip_text else None
        context: dict[str, Any] = {"ip": ip_text, "errors": errors, "address": ip, "page": None}
        if ip is not None:
            context["page"] = await self.store.list_sessions(
                session.tenant, ip_address=ip, limit=PREVIEW
            )
        return await self.page(
            request, session, "confirm_ip.html", context, status=422 if errors else 200
        )

    async def revoke_ip(self, request: Request) -> Response:
        session, form = await self.authorised_post(request)
        ip_text = form.get("ip", "").strip()
        errors: dict[str, str] = {}
        ip = _ip(ip_text, errors, "ip") if ip_text else None
        if ip is None:
            errors.setdefault("ip", text.IP_HELP)
            context = {"ip": ip_text, "errors": errors, "address": None, "page": None}
            return await self.page(request, session, "confirm_ip.html", context, status=422)
        revoked = await self.store.revoke_sessions(
            session.tenant, ip_address=ip, actor=_actor(session)
        )
        log.info(
            "console: revoke %d from %s (tenant %s, key %s)",
            revoked, ip, session.tenant, session.key_id,
        )  # fmt: skip
        await self.sessions.set_flash(
            session, f"Revoked {text.plural(revoked, 'session')} from {ip}."
        )
        return redirect(request, "/sessions", ip=ip)

    # -- the timeline of events -----------------------------------------------------------------

    async def events(self, request: Request) -> Response:
        """The tenant's session events, oldest first (the order the store reads them in), a
        page at a time after an event id; filtered by user and by type."""
        session = await self.signed_in(request)
        user_text = request.query_params.get("user", "").strip()
        type_text = request.query_params.get("type", "").strip()
        after = request.query_params.get("after") or None
        errors: dict[str, str] = {}
        user_id = _user_id(user_text, errors, "user") if user_text else None
        if type_text and type_text not in text.EVENT_TYPES:
            errors["type"] = text.EVENT_TYPE_HELP
        context: dict[str, Any] = {
            "recording": await self.store.events_enabled(),
            "user": user_text,
            "type": type_text,
            "types": text.EVENT_TYPES,
            "user_id": user_id,
            "after": after,
            "page_size": EVENTS_PAGE,
            "errors": errors,
            "page": None,
            "problem": None,
        }
        if errors:
            return await self.page(request, session, "events.html", context, status=422)
        if not context["recording"]:
            return await self.page(request, session, "events.html", context)
        try:
            context["page"] = await self.store.events(
                session.tenant,
                after=after,
                limit=EVENTS_PAGE,
                types=[type_text] if type_text else None,
                user_id=user_id,
            )
        except InvalidCursor:
            context["problem"] = (
                "That page link is no longer valid: start again from the first page."
            )
            return await self.page(request, session, "events.html", context, status=422)
        return await self.page(request, session, "events.html", context)

    # -- errors, in words -----------------------------------------------------------------------

    def error_page(
        self,
        request: Request,
        status: int,
        title: str,
        message: str,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        context = {"status": status, "title": title, "message": message}
        return self.render(request, "error.html", context, status=status, headers=headers)

    async def console_error(self, request: Request, error: Exception) -> Response:
        assert isinstance(error, ConsoleError)
        return self.error_page(request, error.status, error.title, error.message, error.headers)

    async def sign_in_required(self, request: Request, error: Exception) -> Response:
        return redirect(request, "/signin")

    async def store_unavailable(self, request: Request, error: Exception) -> Response:
        log.warning("console: %s", error)
        return self.error_page(
            request,
            503,
            "The session store is unavailable",
            "The console cannot reach Redis right now, so it can neither show nor change "
            "sessions. Try again in a moment; if you had just asked to revoke something, "
            "check afterwards whether it was done.",
            {"Retry-After": "1"},
        )

    async def invalid_argument(self, request: Request, error: Exception) -> Response:
        return self.error_page(request, 422, "That request cannot be answered", str(error))

    async def http_error(self, request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        if error.status_code == 404:
            return self.error_page(
                request, 404, "No such page", "The console has no page at this address."
            )
        if error.status_code == 405:
            return self.error_page(
                request,
                405,
                "Not here",
                "This page does not take that kind of request.",
                dict(error.headers or {}),
            )
        return self.error_page(request, error.status_code, "Refused", str(error.detail))

    async def server_error(self, request: Request, error: Exception) -> Response:
        # The traceback goes to the server log; the page is fixed text, with no template that
        # could fail in turn.
        return HTMLResponse(_SERVER_ERROR, status_code=500)


_SERVER_ERROR: Final = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8">'
    "<title>Server error</title></head><body><h1>Something went wrong on the server</h1>"
    "<p>The console hit an unexpected error; it has been logged. Try again, or go back."
    "</p></body></html>"
)


def _actor(session: ConsoleSession) -> str:
    """Who revokes, as the events record it: the console session's API key, the same actor
    as the admin API records for that key."""
    return f"admin:{session.key_id}"


def _user_id(value: str, errors: dict[str, str], name: str) -> int | None:
    try:
        return inputs.user_id_text(value)
    except InvalidArgument:
        errors[name] = text.USER_ID_HELP
        return None


def _ip(value: str, errors: dict[str, str], name: str) -> str | None:
    try:
        return inputs.ip_address(value)
    except InvalidArgument:
        errors[name] = text.IP_HELP
        return None


def _path_user_id(request: Request) -> int:
    try:
        return inputs.user_id_text(request.path_params["user_id"])
    except InvalidArgument:
        raise ConsoleError(404, "No such user", text.USER_ID_HELP) from None
