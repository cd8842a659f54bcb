"""sessionstore: login sessions in Redis for authentication services.

Every public name is importable from here. Each is loaded on first use, so importing one part
(``sessionstore.webhooks.signing`` for a receiver, the sans-I/O core) loads no Redis client or
web framework it does not need.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._core.binding import InvalidProof
    from ._core.events import Event, EventPage
    from ._core.nearcache import NearCacheStats
    from .aio import AsyncSessionStore
    from .config import StoreConfig
    from .errors import (
        IncompatibleLayout,
        IndexInconsistent,
        InvalidActor,
        InvalidArgument,
        InvalidAuthMethod,
        InvalidCursor,
        InvalidIPAddress,
        InvalidLimit,
        InvalidSessionId,
        InvalidTenant,
        InvalidUserId,
        OperationIncomplete,
        RevocationNotDurable,
        SessionConflict,
        SessionStoreError,
        StoreUnavailable,
        StoreWriteRejected,
    )
    from .geo import LocationResolver, MaxMindResolver
    from .metrics import StoreMetrics
    from .model import Device, Location, Page, Session
    from .store import SessionStore

# Where each public name lives.
_WHERE = {
    "AsyncSessionStore": ".aio",
    "Device": ".model",
    "Event": "._core.events",
    "EventPage": "._core.events",
    "IncompatibleLayout": ".errors",
    "IndexInconsistent": ".errors",
    "InvalidActor": ".errors",
    "InvalidArgument": ".errors",
    "InvalidAuthMethod": ".errors",
    "InvalidCursor": ".errors",
    "InvalidIPAddress": ".errors",
    "InvalidLimit": ".errors",
    "InvalidProof": "._core.binding",
    "InvalidSessionId": ".errors",
    "InvalidTenant": ".errors",
    "InvalidUserId": ".errors",
    "Location": ".model",
    "LocationResolver": ".geo",
    "MaxMindResolver": ".geo",
    "NearCacheStats": "._core.nearcache",
    "OperationIncomplete": ".errors",
    "Page": ".model",
    "RevocationNotDurable": ".errors",
    "Session": ".model",
    "SessionConflict": ".errors",
    "SessionStore": ".store",
    "SessionStoreError": ".errors",
    "StoreConfig": ".config",
    "StoreMetrics": ".metrics",
    "StoreUnavailable": ".errors",
    "StoreWriteRejected": ".errors",
}

__all__ = [
    "AsyncSessionStore",
    "Device",
    "Event",
    "EventPage",
    "IncompatibleLayout",
    "IndexInconsistent",
    "InvalidActor",
    "InvalidArgument",
    "InvalidAuthMethod",
    "InvalidCursor",
    "InvalidIPAddress",
    "InvalidLimit",
    "InvalidProof",
    "InvalidSessionId",
    "InvalidTenant",
    "InvalidUserId",
    "Location",
    "LocationResolver",
    "MaxMindResolver",
    "NearCacheStats",
    "OperationIncomplete",
    "Page",
    "RevocationNotDurable",
    "Session",
    "SessionConflict",
    "SessionStore",
    "SessionStoreError",
    "StoreConfig",
    "StoreMetrics",
    "StoreUnavailable",
    "StoreWriteRejected",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'sessionstore' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
