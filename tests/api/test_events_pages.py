"""GET /events when a page stops at its budget: an empty page with a cursor is an answer, and
following the cursors yields exactly the matching events, in order."""

from __future__ import annotations

import httpx
import pytest

from sessionstore import AsyncSessionStore
from sessionstore._core import events as events_module
from tests import backends
from tests.api.helpers import TENANT_A, admin, bearer


async def test_paging_a_sparse_filter_through_budget_stops_misses_nothing(
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

    pages, cursor = [], None
    while True:
        query = "/events?type=session.revoked&limit=2" + (f"&after={cursor}" if cursor else "")
        response = await api.get(admin(TENANT_A, query), headers=auth)
        if response.status_code == 429:  # filtered pages are heavy: 5 a second per tenant
            clock.advance(int(response.headers["retry-after"]))
            continue
        assert response.status_code == 200
        page = response.json()
        assert set(page) == {"data", "hasMore", "nextCursor"}
        assert page["hasMore"] is (page["nextCursor"] is not None)
        pages.append(page)
        if not page["hasMore"]:
            break
        assert page["nextCursor"] != cursor
        cursor = page["nextCursor"]

    seen = [event["sessionId"] for page in pages for event in page["data"]]
    assert seen == revoked
    assert any(page["data"] == [] and page["hasMore"] for page in pages)  # the budget ran out
    assert pages[-1]["nextCursor"] is None
