"""Signing in with a tenant's API key, and out: the console session starts and ends here."""

from __future__ import annotations

import logging
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from ...._core import inputs
from ....errors import InvalidArgument
from ...ratelimit import retry_after
from .. import auth, text
from ..common import ConsoleContext, ConsoleError, PageRoute, base, read_form, redirect

__all__ = ["ROUTES", "home", "signin", "signin_page", "signout"]

log = logging.getLogger("sessionstore.console")


async def home(console: ConsoleContext, request: Request) -> Response:
    """``/console/``: to the sessions when signed in, else to the sign-in page."""
    session = await console.current(request)
    return redirect(request, "/sessions" if session else "/signin")


async def signin_page(console: ConsoleContext, request: Request) -> Response:
    """The sign-in form (straight to the sessions when already signed in)."""
    if await console.current(request) is not None:
        return redirect(request, "/sessions")
    signed_out = "signed-out" in request.query_params
    return console.render(request, "signin.html", {"tenant": "", "signed_out": signed_out})


async def signin(console: ConsoleContext, request: Request) -> Response:
    """Sign in with a tenant and one of its API keys: a new console session (ending the one
    this browser had), its cookie, and 303 to the sessions. The form again with what is
    wrong: 422 for an empty or malformed field, 401 for a key that is not the tenant's."""
    form = await read_form(request)
    if auth.cross_site(request):
        raise ConsoleError(403, "Refused", "Sign in from the console's own sign-in page.")
    tenant = form.get("tenant", "").strip()
    key = form.get("api_key", "").strip()
    errors = _form_errors(tenant, key)
    context: dict[str, Any] = {"tenant": tenant, "signed_out": False, "errors": errors}
    if errors:
        return console.render(request, "signin.html", context, status=422)
    record = await console.api_keys.verify(key)
    if record is None or record.tenant != tenant:
        return _refused(console, request, context)
    # A sign-in is a request of the key like any other (and it leaves a record in Redis):
    # charged before anything is written.
    console.charge_key(record.id)
    previous = await console.current(request)
    if previous is not None:
        await console.sessions.end(previous)
    value = await console.sessions.start(record, key)
    log.info("console sign-in: tenant %s, API key %s", record.tenant, record.id)
    response = redirect(request, "/sessions")
    auth.set_cookie(response, request, value, base(request))
    return response


def _form_errors(tenant: str, key: str) -> dict[str, str]:
    """What is wrong with the sign-in form's fields, by field name, in words."""
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
    return errors


def _refused(console: ConsoleContext, request: Request, context: dict[str, Any]) -> Response:
    """A sign-in with a key that is not the tenant's: counted against the client's address
    (429 past the failed-authentication rate), and the form again, 401."""
    client = request.client.host if request.client else "unknown"
    log.info("console sign-in refused: tenant %s, from %s", context["tenant"], client)
    wait = console.failed_signins.acquire(client)
    if wait:
        raise ConsoleError(
            429,
            "Too many failed sign-ins",
            f"Too many failed sign-ins from your address. Try again in {retry_after(wait)} s.",
            {"Retry-After": retry_after(wait)},
        )
    context["problem"] = (
        "That tenant and API key do not match a live API key. Check both, or ask for "
        "a new key (sessionstore apikey create)."
    )
    return console.render(request, "signin.html", context, status=401)


async def signout(console: ConsoleContext, request: Request) -> Response:
    """End the console session (a form of this console, with its CSRF token) and its cookie."""
    session, _ = await console.authorised_post(request)
    await console.sessions.end(session)
    response = redirect(request, "/signin", **{"signed-out": "1"})
    auth.clear_cookies(response, base(request))
    return response


ROUTES: Final = (
    PageRoute("GET", "/", home),
    PageRoute("GET", "/signin", signin_page),
    PageRoute("POST", "/signin", signin),
    PageRoute("POST", "/signout", signout),
)
