"""Where a request's token comes from: one rule for both middlewares and the admin API.

Over real HTTP (a server on a loopback port), since how repeated header fields arrive is the
server's doing; once, on the embedded store, since the rule (sessionstore.http.credentials)
reads headers and validating a token on every backend is test_middleware.py's:

- The middlewares read ``Authorization: Bearer`` first, then the session cookie (the order of
  ``token_sources``); the first token the store accepts is the session. A stale cookie never
  blocks a valid bearer token, and a stale bearer token never blocks a valid cookie.
- A credential given twice where the policy reads it (two Authorization fields, or the session
  cookie twice) is refused with 400 ``Bearer error="invalid_request"`` before anything is
  validated: the admin API answers exactly the same.
- A rejected cookie is cleared; a cookie that was never tried (a bearer token won) is left.
"""

from __future__ import annotations

from typing import Any

import pytest

from sessionstore import AsyncSessionStore, SessionStore
from sessionstore.admin import create_app
from sessionstore.admin.apikeys import ApiKeys
from tests.middleware.apps import TENANT
from tests.middleware.conftest import (
    COOKIE,
    LAPTOP,
    LOOPBACK_TLS,
    _serve_asgi,
    session_cookie,
)


@pytest.fixture
def backend() -> str:
    """These rules read headers, not Redis: they run once, on the embedded store (the helpers'
    and the middleware's store calls run on every backend in test_helpers, test_middleware)."""
    return "fake"


COOKIE_USER, HEADER_USER = 1, 2
ANONYMOUS, BY_COOKIE, BY_HEADER, AMBIGUOUS = "anonymous", "cookie", "header", "400"


def token_for(store: SessionStore, user_id: int, state: str) -> tuple[str, str]:
    """A session id and token in ``state``: "valid", or "stale" (revoked)."""
    session, token = store.create(TENANT, user_id, ip_address="192.0.2.1", user_agent=LAPTOP)
    if state == "stale":
        store.revoke(TENANT, user_id, session.id)
    return session.id, token


def presented(store: SessionStore, cookie: str, header: str) -> tuple[list[Any], dict[str, str]]:
    """The header fields of a request presenting ``cookie`` and ``header`` in these states, and
    the session id each source's token belongs to."""
    fields: list[tuple[str, str]] = []
    ids = {}
    if cookie in ("valid", "stale"):
        ids[BY_COOKIE], token = token_for(store, COOKIE_USER, cookie)
        fields.append(("cookie", f"theme=dark; {COOKIE}={token}"))
    elif cookie == "twice":  # a sibling domain tossed in a second one
        _, first = token_for(store, COOKIE_USER, "valid")
        _, second = token_for(store, COOKIE_USER + 10, "valid")
        fields.append(("cookie", f"{COOKIE}={first}; theme=dark; {COOKIE}={second}"))
    elif cookie == "twice in two fields":
        _, first = token_for(store, COOKIE_USER, "valid")
        fields += [("cookie", f"{COOKIE}={first}"), ("cookie", f"{COOKIE}={first}")]
    if header in ("valid", "stale"):
        ids[BY_HEADER], token = token_for(store, HEADER_USER, header)
        fields.append(("authorization", f"Bearer {token}"))
    elif header == "twice":
        _, first = token_for(store, HEADER_USER, "valid")
        fields += [("authorization", f"Bearer {first}"), ("authorization", "Bearer sst_junk")]
    elif header == "basic":
        fields.append(("authorization", "Basic dXNlcjpwYXNz"))
    return fields, ids


# cookie state, Authorization state -> with the default order (header, then cookie): whose
# session the request has, and whether the response clears the cookie.
MATRIX = [
    ("none", "none", ANONYMOUS, False),
    ("none", "valid", BY_HEADER, False),
    ("none", "stale", ANONYMOUS, False),
    ("none", "twice", AMBIGUOUS, False),
    ("none", "basic", ANONYMOUS, False),
    ("valid", "none", BY_COOKIE, False),
    ("valid", "valid", BY_HEADER, False),
    ("valid", "stale", BY_COOKIE, False),
    ("valid", "twice", AMBIGUOUS, False),
    ("valid", "basic", BY_COOKIE, False),
    ("stale", "none", ANONYMOUS, True),
    ("stale", "valid", BY_HEADER, False),  # the stale cookie is not even read
    ("stale", "stale", ANONYMOUS, True),
    ("stale", "twice", AMBIGUOUS, False),
    ("stale", "basic", ANONYMOUS, True),
    ("twice", "none", AMBIGUOUS, False),
    ("twice", "valid", AMBIGUOUS, False),
    ("twice", "stale", AMBIGUOUS, False),
    ("twice", "twice", AMBIGUOUS, False),
    ("twice", "basic", AMBIGUOUS, False),
    ("twice in two fields", "none", AMBIGUOUS, False),
    ("twice in two fields", "valid", AMBIGUOUS, False),
]

# Other orders and single sources: a source the policy does not read is never looked at.
ORDERS = [
    (("cookie", "header"), "valid", "valid", BY_COOKIE, False),
    (("cookie", "header"), "stale", "valid", BY_HEADER, True),
    (("cookie", "header"), "valid", "stale", BY_COOKIE, False),
    (("cookie", "header"), "none", "twice", AMBIGUOUS, False),
    (("cookie",), "valid", "valid", BY_COOKIE, False),
    (("cookie",), "valid", "twice", BY_COOKIE, False),
    (("cookie",), "none", "valid", ANONYMOUS, False),
    (("header",), "valid", "valid", BY_HEADER, False),
    (("header",), "twice", "valid", BY_HEADER, False),
    (("header",), "valid", "none", ANONYMOUS, False),
]


async def check(
    make_web: Any, store: SessionStore, options: dict[str, Any], row: tuple[Any, ...]
) -> None:
    cookie, header, outcome, clears = row
    web = make_web(live=True, **options)
    fields, ids = presented(store, cookie, header)
    response = await web.device().get("/whoami", headers=fields)
    if outcome == AMBIGUOUS:
        assert response.status_code == 400
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"] == 'Bearer error="invalid_request"'
        assert web.trips.count == 0  # refused before anything is validated
    elif outcome == ANONYMOUS and options.get("required"):
        assert response.status_code == 401
    elif outcome == ANONYMOUS:
        assert response.json() == {"session": None, "state": None}
    else:
        assert response.json()["session"] == ids[outcome]
    cleared = session_cookie(response)
    assert (cleared is not None and "Max-Age=0" in cleared) is clears


@pytest.mark.parametrize("required", [False, True], ids=["optional", "required"])
@pytest.mark.parametrize("row", MATRIX, ids=[f"cookie:{r[0]}-header:{r[1]}" for r in MATRIX])
async def test_default_order(
    make_web: Any, store: SessionStore, required: bool, row: tuple[Any, ...]
) -> None:
    await check(make_web, store, {"required": required}, row)


@pytest.mark.parametrize(
    "row", ORDERS, ids=[f"{'+'.join(r[0])}-cookie:{r[1]}-header:{r[2]}" for r in ORDERS]
)
async def test_other_orders(make_web: Any, store: SessionStore, row: tuple[Any, ...]) -> None:
    await check(make_web, store, {"token_sources": row[0]}, row[1:])


# -- the admin API: its key comes by the same rule ----------------------------------------------

ADMIN = [
    ("none", 401, "Bearer"),
    ("valid", 200, None),
    ("stale", 401, 'Bearer error="invalid_token"'),
    ("basic", 401, "Bearer"),
    ("twice", 400, 'Bearer error="invalid_request"'),
    ("twice, same key", 400, 'Bearer error="invalid_request"'),
    ("two in one field", 400, 'Bearer error="invalid_request"'),
]


@pytest.mark.parametrize(("header", "status", "challenge"), ADMIN, ids=[r[0] for r in ADMIN])
async def test_the_admin_api_reads_its_key_by_the_same_rule(
    astore: AsyncSessionStore, header: str, status: int, challenge: str | None
) -> None:
    import httpx

    api_keys = ApiKeys(astore.client, astore.config.prefix)
    record, key = await api_keys.create(TENANT)
    fields = {
        "none": [],
        "valid": [("authorization", f"Bearer {key}")],
        "stale": [("authorization", f"Bearer {key}")],
        "basic": [("authorization", "Basic dXNlcjpwYXNz")],
        "twice": [("authorization", f"Bearer {key}"), ("authorization", "Bearer sk_live_x")],
        "twice, same key": [("authorization", f"Bearer {key}")] * 2,
        "two in one field": [("authorization", f"Bearer {key}, Bearer {key}")],
    }[header]
    if header == "stale":
        await api_keys.revoke(record.id)
    base_url, stop = await _serve_asgi(create_app(astore))
    try:
        async with httpx.AsyncClient(base_url=base_url, verify=LOOPBACK_TLS) as client:
            response = await client.get(f"/t/{TENANT}/api/v1/admin/sessions", headers=fields)
    finally:
        await stop()
    assert response.status_code == status
    assert response.headers.get("www-authenticate") == challenge
