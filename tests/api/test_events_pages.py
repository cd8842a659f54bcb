"""GET /events: oldest first after a cursor (the default) or newest first before one
(``order=desc``), filtered by type, user and IP address. A page that stops at its budget is an
answer (an empty page with a cursor); following the cursors yields exactly the matching
events, in order, either way."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from sessionstore import AsyncSessionStore
from sessionstore._core import events as events_module
from sessionstore.admin import app as admin_app
from sessionstore.admin import openapi
from tests import backends
from tests.api.helpers import TENANT_A, admin, bearer, is_problem


async def walk(
    api: httpx.AsyncClient, auth: dict[str, str], clock: backends.Clock, query: str, cursor: str
) -> list[dict[str, Any]]:
    """Every page of ``query``, following ``nextCursor`` as ``cursor`` (after or before)."""
    pages: list[dict[str, Any]] = []
    at = None
    while True:
        path = f"/events?{query}" + (f"&{cursor}={at}" if at else "")
        response = await api.get(admin(TENANT_A, path), headers=auth)
        if response.status_code == 429:  # filtered pages are heavy: 5 a second per tenant
            clock.advance(int(response.headers["retry-after"]))
            continue
        assert response.status_code == 200, response.text
        page = response.json()
        assert set(page) == {"data", "hasMore", "nextCursor"}
        assert page["hasMore"] is (page["nextCursor"] is not None)
        pages.append(page)
        if not page["hasMore"]:
            return pages
        assert page["nextCursor"] != at
        at = page["nextCursor"]


async def test_paging_a_sparse_filter_through_budget_stops_misses_nothing_either_way(
    api: httpx.AsyncClient,
    astore: AsyncSessionStore,
    keys: dict,
    clock: backends.Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    revoked = []
    for n in range(240):
        session, _ = await astore.create(
            TENANT_A, n % 60, ip_address="203.0.113.9", user_agent="pytest"
        )
        if n in (7, 230):  # far apart: the pages between find none
            await astore.revoke(TENANT_A, session.user_id, session.id)
            revoked.append(session.id)
        clock.advance(0.002)
    monkeypatch.setattr(events_module, "PAGE_BUDGET", 130)  # just over one entry a bucket
    auth = bearer(keys[TENANT_A])

    for query, cursor, expected in (
        ("type=session.revoked&limit=2", "after", revoked),
        ("type=session.revoked&limit=2&order=asc", "after", revoked),
        ("type=session.revoked&limit=2&order=desc", "before", revoked[::-1]),
    ):
        pages = await walk(api, auth, clock, query, cursor)
        assert [event["sessionId"] for page in pages for event in page["data"]] == expected
        assert any(page["data"] == [] and page["hasMore"] for page in pages)  # budget ran out
        assert pages[-1]["nextCursor"] is None


async def test_newest_first_and_by_ip_address_combined_with_user_and_type(
    api: httpx.AsyncClient, astore: AsyncSessionStore, keys: dict, clock: backends.Clock
) -> None:
    suspect = "2001:db8::5"
    made = []
    for user in (1, 2, 1):
        made.append((await astore.create(TENANT_A, user, ip_address=suspect, user_agent="x"))[0])
        clock.advance(0.01)
    await astore.create(TENANT_A, 1, ip_address="198.51.100.23", user_agent="x")
    clock.advance(0.01)
    auth = bearer(keys[TENANT_A])
    revoked = await api.delete(admin(TENANT_A, f"/sessions?ipAddress={suspect}"), headers=auth)
    assert revoked.json() == {"revoked": 3}

    # Any spelling of the address, as the sessions list takes it.
    newest = await api.get(
        admin(TENANT_A, "/events?order=desc&ipAddress=2001:DB8:0::5&limit=4"), headers=auth
    )
    page = newest.json()
    assert [event["type"] for event in page["data"]] == ["session.revoked"] * 3 + [
        "session.created"
    ]
    assert {event["ipAddress"] for event in page["data"]} == {suspect}
    assert page["data"][-1]["sessionId"] == made[2].id  # the newest creation from it
    older = await api.get(
        admin(TENANT_A, f"/events?order=desc&ipAddress={suspect}&before={page['nextCursor']}"),
        headers=auth,
    )
    assert [event["sessionId"] for event in older.json()["data"]] == [made[1].id, made[0].id]
    assert older.json()["hasMore"] is False

    mine = await api.get(
        admin(TENANT_A, f"/events?ipAddress={suspect}&userId=1&type=session.created"),
        headers=auth,
    )
    assert [event["sessionId"] for event in mine.json()["data"]] == [made[0].id, made[2].id]
    # A filter by address can read its whole budget for one match: it costs what the others do.
    cost = admin_app.ROUTE_COSTS[("/events", "GET")]
    assert cost.tokens({"ipAddress": suspect}) == cost.tokens({"type": "session.revoked"}) == 10


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("?order=newest", "order must be asc (oldest first) or desc (newest first)"),
        ("?before=1-0-00", "before= pages newest first: give order=desc with it"),
        ("?order=asc&before=1-0-00", "give order=desc"),
        ("?order=desc&after=1-0-00", "a newest-first page reads back from before="),
        ("?order=desc&before=yesterday", "not an event id"),
        ("?ipAddress=203.0.113.300", "not an IP address"),
        ("?ipAddress=10.0.0.0/8", "plain IPv4 or IPv6"),
    ],
)
async def test_an_order_its_cursor_and_an_address_are_checked(
    api: httpx.AsyncClient, keys: dict, query: str, words: str
) -> None:
    answer = await api.get(admin(TENANT_A, f"/events{query}"), headers=bearer(keys[TENANT_A]))
    assert is_problem(answer, 422)
    assert words in answer.json()["detail"]


def test_the_document_describes_both_orders_their_cursors_and_the_address_filter() -> None:
    operation = openapi.document()["paths"]["/t/{tenant}/api/v1/admin/events"]["get"]
    named = {
        openapi.PARAMETERS[ref["$ref"].rsplit("/", 1)[-1]]["name"]
        for ref in operation["parameters"]
    }
    assert {"order", "after", "before", "ipAddress", "userId", "type", "limit"} <= named
    order = openapi.PARAMETERS["Order"]
    assert order["schema"] == {"enum": ["asc", "desc"], "default": "asc"}
    assert "keep their meaning" in order["description"]  # why asc is the default
    assert "order=desc" in openapi.PARAMETERS["Before"]["description"]
    assert "`before`" in openapi.SCHEMAS["EventList"]["properties"]["nextCursor"]["description"]
    assert "newest first" in operation["summary"]
