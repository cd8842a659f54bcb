"""Login sessions for web apps: a middleware validates each request's token once.

asgi      SessionMiddleware and async helpers for ASGI apps (Starlette, FastAPI, any other)
wsgi      SessionMiddleware and helpers for WSGI apps (Flask, Django, any other), and
          ``register_flask`` to answer refusals in a Flask app as the middleware would
fastapi   FastAPI dependencies (``CurrentSession``, ``OptionalSession``)
policy    what both middlewares decide, with no I/O: tokens, refusals, cookies, caches

Import the face your framework needs (``from sessionstore.middleware.asgi import
SessionMiddleware, login``); only it loads that framework. This package itself loads none,
and names what both faces share: the options (DeviceBinding for device-bound sessions), the
refusals they raise, the cookie names.
"""

from .policy import (
    COOKIE_NAME,
    SECURE_COOKIE_NAME,
    CrossSiteRequest,
    DeviceBinding,
    Policy,
    PolicyOptions,
    Refusal,
    Reply,
    SameSite,
    SessionRequired,
    TokenSource,
)

__all__ = [
    "COOKIE_NAME",
    "SECURE_COOKIE_NAME",
    "CrossSiteRequest",
    "DeviceBinding",
    "Policy",
    "PolicyOptions",
    "Refusal",
    "Reply",
    "SameSite",
    "SessionRequired",
    "TokenSource",
]
