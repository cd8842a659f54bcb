"""What every console page is built with: rendering, links, forms, who is signed in.

``ConsoleContext`` holds what the pages share (the store, the console sessions, the per-key
buckets, the templates) and the steps every page takes: render a template, know the signed-in
console session (``signed_in``), accept a state-changing form only from this console with its
CSRF token (``authorised_post``), and charge the API key's bucket. Pages (``pages/``) are
functions of a context and a request, declared with ``PageRoute``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode

import jinja2
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from ..._core import inputs
from ...aio import AsyncSessionStore
from ...errors import InvalidArgument
from ...http.origin import tokens_match
from ...model import isoformat
from ..apikeys import ApiKeys
from ..endpoint import BodyRefused, read_body
from ..ratelimit import Limiter, RateLimits, retry_after
from . import auth, text
from .auth import ConsoleSession, ConsoleSessions, ConsoleSettings

__all__ = [
    "MAX_FORM_BYTES",
    "ConsoleContext",
    "ConsoleError",
    "PageRoute",
    "SignInRequired",
    "actor",
    "back_path",
    "base",
    "ip_of",
    "link",
    "local",
    "path_user_id",
    "read_form",
    "redirect",
    "user_id_of",
]

MAX_FORM_BYTES: Final = 4096
_FORM_TYPE: Final = "application/x-www-form-urlencoded"
# A place to go back to after an action: a path of this console, never another site's.
_BACK: Final = re.compile(r"/(?![/\\])[^\s\\]{0,1000}")


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
    """A console path with its query, as the browser reaches it (behind ``base``)."""
    return base(request) + local(path, **params)


def redirect(request: Request, path: str, **params: object) -> RedirectResponse:
    """303 to a console path: after a form, and to the page a request should have asked for."""
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
    env.globals.update(plural=text.plural, count=text.count, relative=text.relative)
    return env


class ConsoleContext:
    """What the console's pages share, and the steps every page takes."""

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
        """The page of ``template``, with what every page is given beside ``context``."""
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
        """The browser's live console session, if any (nothing charged)."""
        return await self.sessions.load(auth.cookie_value(request))

    async def signed_in(self, request: Request) -> ConsoleSession:
        """The console session of a page that needs one (SignInRequired without), charged."""
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
                403, "Refused", "That form was sent from another site. Use the console's own pages."
            )
        session = await self.current(request)
        if session is None:
            raise ConsoleError(
                403,
                "You are signed out",
                "Nothing was changed: your console session has ended. Sign in again, then "
                "repeat the action.",
            )
        if not tokens_match(form.get("csrf"), session.csrf):
            raise ConsoleError(
                403,
                "This form has expired",
                "Nothing was changed: the form did not carry this console session's token. "
                "Reload the page and try again.",
            )
        self.charge(session)
        return session, form

    def charge(self, session: ConsoleSession) -> None:
        """Spend a token of the session's API key (see ``charge_key``)."""
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

    def error_page(
        self,
        request: Request,
        status: int,
        title: str,
        message: str,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """A refusal or failure as a page in words: a title and a sentence, at ``status``."""
        context = {"status": status, "title": title, "message": message}
        return self.render(request, "error.html", context, status=status, headers=headers)


Page = Callable[[ConsoleContext, Request], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class PageRoute:
    """A page of the console: the method and path (under ``/console``) it answers."""

    method: str
    path: str
    page: Page


def actor(session: ConsoleSession) -> str:
    """Who revokes, as the events record it: the console session's API key, the same actor
    as the admin API records for that key."""
    return f"admin:{session.key_id}"


def user_id_of(value: str, errors: dict[str, str], name: str) -> int | None:
    """The user id a field holds; None, and why in ``errors[name]``, when it holds none."""
    try:
        return inputs.user_id_text(value)
    except InvalidArgument:
        errors[name] = text.USER_ID_HELP
        return None


def ip_of(value: str, errors: dict[str, str], name: str) -> str | None:
    """The IP address a field holds; None, and why in ``errors[name]``, when it holds none."""
    try:
        return inputs.ip_address(value)
    except InvalidArgument:
        errors[name] = text.IP_HELP
        return None


def back_path(value: str | None, default: str) -> str:
    """Where to go back to after an action: ``value`` if it is a path of this console (as
    ``local`` writes them), else ``default``."""
    return value if value and _BACK.fullmatch(value) else default


def path_user_id(request: Request) -> int:
    """The user id of the path; a path that holds none is no page (ConsoleError 404)."""
    try:
        return inputs.user_id_text(request.path_params["user_id"])
    except InvalidArgument:
        raise ConsoleError(404, "No such user", text.USER_ID_HELP) from None
