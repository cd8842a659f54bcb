"""Every session from one IP address: the form, the count of what would go, then revoking it."""

from __future__ import annotations

import logging
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from .. import text
from ..common import ConsoleContext, PageRoute, actor, ip_of, redirect

__all__ = ["ROUTES", "revoke_ip", "revoke_ip_page"]

log = logging.getLogger("sessionstore.console")

PREVIEW: Final = 10  # sessions shown before a revocation by IP is confirmed


async def revoke_ip_page(console: ConsoleContext, request: Request) -> Response:
    """The IP form, then the confirmation step with the count of what would go."""
    session = await console.signed_in(request)
    ip_text = request.query_params.get("ip", "").strip()
    errors: dict[str, str] = {}
    ip = ip_of(ip_text, errors, "ip") if ip_text else None
    context: dict[str, Any] = {"ip": ip_text, "errors": errors, "address": ip, "page": None}
    if ip is not None:
        context["page"] = await console.store.list_sessions(
            session.tenant, ip_address=ip, limit=PREVIEW
        )
    return await console.page(
        request, session, "confirm_ip.html", context, status=422 if errors else 200
    )


async def revoke_ip(console: ConsoleContext, request: Request) -> Response:
    """Revoke every session from the form's address: 303 to the sessions from it (now
    none); 422 with the form again for an address that is none."""
    session, form = await console.authorised_post(request)
    ip_text = form.get("ip", "").strip()
    errors: dict[str, str] = {}
    ip = ip_of(ip_text, errors, "ip") if ip_text else None
    if ip is None:
        errors.setdefault("ip", text.IP_HELP)
        context = {"ip": ip_text, "errors": errors, "address": None, "page": None}
        return await console.page(request, session, "confirm_ip.html", context, status=422)
    revoked = await console.store.revoke_sessions(
        session.tenant, ip_address=ip, actor=actor(session)
    )
    log.info(
        "console: revoke %d from %s (tenant %s, key %s)",
        revoked, ip, session.tenant, session.key_id,
    )  # fmt: skip
    await console.sessions.set_flash(
        session, f"Revoked {text.plural(revoked, 'session')} from {ip}."
    )
    return redirect(request, "/sessions", ip=ip)


ROUTES: Final = (
    PageRoute("GET", "/ip/revoke", revoke_ip_page),
    PageRoute("POST", "/ip/revoke", revoke_ip),
)
