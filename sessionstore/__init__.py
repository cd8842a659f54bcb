"""sessionstore: login sessions in Redis for authentication services."""

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
