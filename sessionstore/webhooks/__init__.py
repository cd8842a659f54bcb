"""Webhooks: a tenant's session events POSTed to its endpoints, signed, in order, at least once.

Four modules, each usable without the ones after it:

- ``signing``: Standard Webhooks signatures (``sign``, ``verify``, ``new_secret``) and the body
  of a delivery (``payload``). All a receiver needs; it imports no HTTP client and no Redis.
- ``destinations``: where a delivery may go. The endpoint URL parser (``destination``,
  ``check_url``), the addresses refused unless the operator allows them (``refusal``,
  ``allowed``, ``DestinationRefused``) and the bounded name lookups (``Lookups``).
- ``registry``: the records in Redis (``Webhook``, ``Attempt``, their keys) and ``Webhooks``,
  which registers, lists and removes a tenant's endpoints and reads their delivery logs (also
  ``sessionstore webhooks add|list|remove|log`` and the admin API).
- ``delivery``: the ``Deliverer`` (``sessionstore serve --events``, ``sessionstore webhooks
  run``), its per-endpoint cursor and lease, and the retry ``Backoff``; its docstring says why
  delivery is ordered and at least once.

The names below are those modules' and are imported on first use, so that importing
``sessionstore.webhooks.signing`` loads neither the deliverer nor httpx.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .delivery import GIVE_UP_AFTER, Backoff, Deliverer
    from .destinations import (
        MAX_URL_LENGTH,
        URL_PATTERN,
        Destination,
        DestinationRefused,
        Lookups,
        LookupTimedOut,
        NoTurn,
        allowed,
        check_url,
        destination,
        refusal,
    )
    from .registry import MAX_PER_TENANT, Attempt, TooManyWebhooks, Webhook, Webhooks
    from .signing import new_secret, payload, sign, verify

__all__ = [
    "GIVE_UP_AFTER",
    "MAX_PER_TENANT",
    "MAX_URL_LENGTH",
    "URL_PATTERN",
    "Attempt",
    "Backoff",
    "Deliverer",
    "Destination",
    "DestinationRefused",
    "LookupTimedOut",
    "Lookups",
    "NoTurn",
    "TooManyWebhooks",
    "Webhook",
    "Webhooks",
    "allowed",
    "check_url",
    "destination",
    "new_secret",
    "payload",
    "refusal",
    "sign",
    "verify",
]

# Where each name of __all__ lives.
_HOMES = {
    "delivery": ("GIVE_UP_AFTER", "Backoff", "Deliverer"),
    "destinations": (
        "MAX_URL_LENGTH",
        "URL_PATTERN",
        "Destination",
        "DestinationRefused",
        "LookupTimedOut",
        "Lookups",
        "NoTurn",
        "allowed",
        "check_url",
        "destination",
        "refusal",
    ),
    "registry": ("MAX_PER_TENANT", "Attempt", "TooManyWebhooks", "Webhook", "Webhooks"),
    "signing": ("new_secret", "payload", "sign", "verify"),
}
_MODULE_OF = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name: str) -> Any:
    """A name of ``__all__``, taken from its module (imported now, if it was not yet)."""
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
