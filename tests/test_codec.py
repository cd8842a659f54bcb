"""The hash layout: every value fits a listpack entry; decoding restores the Session."""

from __future__ import annotations

from datetime import UTC, datetime

from sessionstore.codec import CHUNK, decode_session, session_fields
from sessionstore.model import Device, Location, Session


def make(user_agent: str, location: Location | None) -> Session:
    moment = datetime(2024, 1, 15, 10, 0, tzinfo=UTC)
    return Session(
        id="sess_" + "a" * 32,
        user_id=456,
        ip_address="2001:db8::1",
        user_agent=user_agent,
        device=Device("mobile", "iOS", "Mobile Safari"),
        location=location,
        auth_method="sso",
        mfa_verified=False,
        created_at=moment,
        last_active_at=moment,
        expires_at=moment.replace(day=16),
    )


def encode(session: Session) -> list[bytes]:
    fields = session_fields(session, 1705399200000)
    return [item if isinstance(item, bytes) else str(item).encode() for item in fields]


def test_round_trip_with_and_without_location() -> None:
    for location in (Location("New York", "US"), Location(None, "DE"), None):
        session = make("Mozilla/5.0 " + "x" * 200, location)
        assert decode_session(session.id, encode(session)) == session


def test_no_field_or_value_exceeds_the_listpack_limit() -> None:
    session = make("Mozilla/5.0 (Ünïcode) " * 20, Location("C" * 100, "US"))
    assert all(len(item) <= CHUNK for item in encode(session))


def test_spec_example_times() -> None:
    body = make("ua", None).to_dict()
    assert body["createdAt"] == "2024-01-15T10:00:00Z"
    assert body["expiresAt"] == "2024-01-16T10:00:00Z"
