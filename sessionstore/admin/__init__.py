"""The admin REST API and what it is built from.

routes (the one route table: every operation, said once), app (the Starlette app built from
it), endpoint (what handlers share), sessions and webhooks (the handlers), apikeys
(``sk_live_`` keys), ratelimit (in-memory token buckets and in-flight caps), openapi (the
OpenAPI document) and console/ (the browser console at ``/console``).
Importing this package imports no web framework: ``create_app`` loads Starlette when called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(name)
