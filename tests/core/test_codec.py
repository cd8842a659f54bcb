"""The hash layout: every value fits a listpack entry; decoding restores the Session."""

from __future__ import annotations

from datetime import UTC, datetime

from sessionstore._core.codec import CHUNK, VIEW, decode_view, session_fields
from sessionstore.model import Device, Location, Session


def make(user_agent: str, location: Location | None) -> Session:
    moment = datetime(2024, 1, 15, 10, 0, tzinfo=UTC)
    return Session(
        id="sess_" + "a" * 24,
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


def view_of(fields: list[bytes]) -> list[bytes | None]:
    """What HMGET of VIEW answers for a hash holding these fields."""
    stored = dict(zip(fields[::2], fields[1::2], strict=True))
    return [stored.get(name.encode()) for name in VIEW]


def test_round_trip_with_and_without_location() -> None:
    for location in (Location("New York", "US"), Location(None, "DE"), None):
        session = make("Mozilla/5.0 " + "x" * 200, location)
        assert decode_view(session.id, view_of(encode(session))) == session


def test_the_view_covers_every_field_a_session_can_have() -> None:
    longest = make("é" * 512, Location("City", "US"))  # inputs.MAX_USER_AGENT_BYTES
    # h is written by create.lua, X with an idle timeout, b when the session is bound (DBSC).
    names = {name.decode() for name in encode(longest)[::2]} - {"v"} | {"h", "X", "b"}
    assert names == set(VIEW)


def test_no_field_or_value_exceeds_the_listpack_limit() -> None:
    session = make("Mozilla/5.0 (Ünïcode) " * 20, Location("C" * 100, "US"))
    assert all(len(item) <= CHUNK for item in encode(session))


def test_spec_example_times() -> None:
    body = make("ua", None).to_dict()
    assert body["createdAt"] == "2024-01-15T10:00:00Z"
    assert body["expiresAt"] == "2024-01-16T10:00:00Z"
