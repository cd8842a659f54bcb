"""Every event type and revocation reason, written once.

The scripts say ``EVENT.created`` and ``REASON.bulk``; ``scripts.py`` turns them into the
letters and words below when it loads them, and refuses a name that is not here. Readers, the
OpenAPI document, the console and the CLI all derive their lists from these enums, so a new
event type is this file and the script that emits it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

__all__ = ["EventType", "Reason", "Tone"]


class Tone(enum.Enum):
    """How the console colours an event (CSS class ``event--<tone>``)."""

    GOOD = "good"
    BAD = "bad"
    WARN = "warn"
    INFO = "info"


class EventType(enum.Enum):
    """An event type: the letter a script writes (small stream entries), the name readers see,
    the console's words for it and its tone."""

    CREATED = ("c", "session.created", "Created", Tone.GOOD)
    REVOKED = ("r", "session.revoked", "Revoked", Tone.BAD)
    EVICTED = ("v", "session.evicted", "Evicted", Tone.BAD)
    EXPIRED = ("x", "session.expired", "Expired", Tone.WARN)
    MFA_VERIFIED = ("m", "session.mfa_verified", "MFA verified", Tone.INFO)
    BOUND = ("b", "session.bound", "Device bound", Tone.GOOD)
    BINDING_FAILED = ("f", "session.binding_failed", "Device binding failed", Tone.BAD)

    def __init__(self, code: str, type_name: str, words: str, tone: Tone) -> None:
        self.code = code
        self.type_name = type_name
        self.words = words
        self.tone = tone

    @property
    def script_name(self) -> str:
        """What a script calls it: ``EVENT.mfa_verified``."""
        return self.name.lower()

    @classmethod
    def named(cls, type_name: str) -> EventType | None:
        return _BY_TYPE_NAME.get(type_name)

    @classmethod
    def coded(cls, code: bytes | str) -> EventType:
        return _BY_CODE[code.decode() if isinstance(code, bytes) else code]

    @classmethod
    def codes_of(cls, type_names: Iterable[str]) -> frozenset[bytes]:
        """The letters in the stream of these type names (how a filter is applied)."""
        return frozenset(kind.code.encode() for kind in cls if kind.type_name in type_names)

    @classmethod
    def type_names(cls) -> tuple[str, ...]:
        return tuple(kind.type_name for kind in cls)


class Reason(enum.Enum):
    """Why a revocation or eviction happened beyond the actor's word: what the console says."""

    REVOKE_ALL = ("revoke_all", "All of the user's sessions")
    BULK = ("bulk", "Bulk revocation (by IP)")
    CAP = ("cap", "Over the per-user session cap")
    # Why a device binding failed (session.binding_failed; session.revoked when the policy
    # revokes on a failure).
    KEY_MISMATCH = ("key_mismatch", "Signed by another key than the session's")
    BOUND_COOKIE_EXPIRED = ("bound_cookie_expired", "A bound cookie presented after it expired")

    def __init__(self, code: str, words: str) -> None:
        self.code = code
        self.words = words

    @classmethod
    def words_for(cls, code: str) -> str:
        return next((reason.words for reason in cls if reason.code == code), code)


_BY_TYPE_NAME = {kind.type_name: kind for kind in EventType}
_BY_CODE = {kind.code: kind for kind in EventType}
