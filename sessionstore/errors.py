"""The exceptions sessionstore raises. Bad input is a ValueError; a Redis outage is not."""

from __future__ import annotations

__all__ = [
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
    "OperationIncomplete",
    "RevocationNotDurable",
    "SessionConflict",
    "SessionStoreError",
    "StoreUnavailable",
    "StoreWriteRejected",
]


class SessionStoreError(Exception):
    """Base class of every error raised by sessionstore."""


class InvalidArgument(SessionStoreError, ValueError):
    """A caller passed a value sessionstore cannot accept."""


class InvalidTenant(InvalidArgument):
    """A tenant that is not 1-63 lower-case letters, digits and hyphens, starting with no hyphen."""


class InvalidUserId(InvalidArgument):
    """A user id that is not a whole number from 0 to 2^63 - 1."""


class InvalidIPAddress(InvalidArgument):
    """Not one IPv4 or IPv6 address (no scope, prefix, port or padding)."""


class InvalidAuthMethod(InvalidArgument):
    """An auth method outside the spec's list."""


class InvalidSessionId(InvalidArgument):
    """Not a session id of the shape ``sess_`` + 24 characters."""


class InvalidCursor(InvalidArgument):
    """A cursor this store did not issue (listings and events)."""


class InvalidLimit(InvalidArgument):
    """A page size that is not a whole number from 1 to 1000."""


class InvalidActor(InvalidArgument):
    """An actor that is not 1-64 characters of letters, digits and ``_.:@-``."""


class StoreUnavailable(SessionStoreError):
    """Redis could not be reached or did not answer in time.

    Validation fails closed on this error: no session is ever returned.
    """


class StoreWriteRejected(StoreUnavailable):
    """Redis refused a write (out of memory, read-only replica, too few replicas)."""


class RevocationNotDurable(StoreUnavailable):
    """The revocation was applied on the primary, but too few replicas confirmed it in time."""


class IncompatibleLayout(StoreUnavailable):
    """The keys under this prefix were written by another layout or bucket count.

    Reading them would misplace sessions, so the store refuses to run over them.
    """


class IndexInconsistent(StoreUnavailable):
    """An index the store needs was missing (deleted by hand, or evicted by Redis).

    Raised after the store repaired what it could: revoke_all found the user's sessions
    through their bucket and ended them all, so nothing was missed; it reports the loss
    rather than a count that would look like "nothing to revoke".
    """


class OperationIncomplete(StoreUnavailable):
    """A call reached the bound on its round trips, or stopped making progress, with work
    left; what it did stays done (``done`` says how much) and it is safe to call again."""

    def __init__(self, message: str, *, done: int = 0) -> None:
        super().__init__(message)
        self.done = done


class SessionConflict(SessionStoreError):
    """A freshly drawn session id was already taken (never expected with 128-bit ids)."""
