"""The first admin page of tenants an adversary has shaped, beside a clean tenant's, in one run.

Every tenant holds the same background (sessions of many users, workload.background); the
clean one holds nothing else. In the others one user then logs in ``plan.adversary_logins``
times (30,000 in a full run):

- ``capped``: under ``max_sessions_per_user=100``, so the cap evicts all but the newest 100;
- ``capped_then_revoke_all``: the same, then the user's revoke_all;
- ``uncapped_then_revoke_all``: under a cap above the logins (every login stays live), then
  revoke_all, which ends all of them in one script.

Then the first admin page, ``list_sessions(tenant, limit=100)``, of each tenant is timed, the
runs interleaved (timing.compare), and each median is set beside the clean tenant's: a
listing that has to step over what the adversary left (index entries of evicted or revoked
sessions, one overfull bucket) would show here. Each page is checked first: 100 sessions,
the adversary's live ones where it has some and none where it was revoked. Round trips are the
batches the store's ``_run`` sends for one first page (the layout check already done), calls
the calls in them, positions found what the bucket scripts report, and sessions fetched the
sessions read whole (a page shows 100 of them). Tenants are deleted at the end.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sessionstore import SessionStore
from sessionstore._core import scripts
from sessionstore._core.flows import Batch, ScriptCall
from sessionstore.model import Page

from ..bench import Bench
from ..bulk import create_many, delete_matching
from ..workload import background, of_user

CAP = 100
UNCAPPED = 100_000  # StoreConfig's largest max_sessions_per_user: every login stays live
LIMIT = 100
ADVERSARY = 666
CLEAN = "clean"
# state: (tenant, cap, revoke_all after the logins)
STATES: dict[str, tuple[str, int, bool]] = {
    "capped": ("adv-capped", CAP, False),
    "capped_then_revoke_all": ("adv-capped-revoked", CAP, True),
    "uncapped_then_revoke_all": ("adv-uncapped-revoked", UNCAPPED, True),
}
CLEAN_TENANT = "adv-clean"


def run(bench: Bench) -> dict[str, Any]:
    if not bench.backend.real:
        return {}  # measured on a real Redis: the embedded server runs Lua in Python
    plan = bench.plan
    stores = {cap: bench.store_with(max_sessions_per_user=cap) for cap in (CAP, UNCAPPED)}
    tenants = {CLEAN: CLEAN_TENANT, **{state: tenant for state, (tenant, _, _) in STATES.items()}}
    try:
        for tenant in tenants.values():
            _write(bench, stores[CAP], tenant)
        for state, (tenant, cap, revoke) in STATES.items():
            _attack(bench, stores[cap], state, tenant, revoke)
        lister = stores[CAP]  # listing does not depend on the cap
        pages = {state: _checked_page(lister, state, tenant) for state, tenant in tenants.items()}
        trips = {state: _round_trips(lister, tenant) for state, tenant in tenants.items()}
        measured = bench.compare(
            f"first admin page, limit {LIMIT}",
            {state: _first_page(lister, tenant) for state, tenant in tenants.items()},
            plan.scaling,
        )
    finally:
        for tenant in tenants.values():
            delete_matching(bench.client, bench.tenant_pattern(tenant))
    clean_p50 = measured[CLEAN]["p50_ms"]
    results: dict[str, Any] = {
        "background_sessions": plan.adversary_background,
        "logins": plan.adversary_logins,
        "cap": CAP,
        "limit": LIMIT,
        "states": {},
    }
    for state in tenants:
        cost, p50 = trips[state], measured[state]["p50_ms"]
        results["states"][state] = {
            "total_count": pages[state].total_count,
            **cost,
            "page": measured[state],
            "ratio_to_clean": p50 / clean_p50,
        }
        bench.progress.result(
            f"  {state}",
            f"{p50 / clean_p50:.2f}x clean; {cost['round_trips']} round trips, "
            f"{cost['calls']} calls, {cost['sessions_fetched']} sessions fetched",
        )
    return results


def _write(bench: Bench, store: SessionStore, tenant: str) -> None:
    count = bench.plan.adversary_background
    counter = bench.progress.counter(f"background of {tenant}", count)
    create_many(store, background(0, count, tenant=tenant), on_progress=counter.advance)
    counter.finish()


def _attack(bench: Bench, store: SessionStore, state: str, tenant: str, revoke: bool) -> None:
    logins = bench.plan.adversary_logins
    counter = bench.progress.counter(f"{state}: one user logs in {logins:,} times", logins)
    create_many(store, of_user(ADVERSARY, logins, tenant=tenant), on_progress=counter.advance)
    counter.finish()
    live = min(logins, store.config.max_sessions_per_user)
    if revoke:
        revoked = store.revoke_all(tenant, ADVERSARY)
        if revoked != live:
            raise RuntimeError(f"{state}: revoke_all ended {revoked} sessions, not {live}")
        live = 0
    if len(store.list_user_sessions(tenant, ADVERSARY)) != live:
        raise RuntimeError(f"{state}: the user does not hold {live} live sessions")


def _checked_page(store: SessionStore, state: str, tenant: str) -> Page:
    """The first page must be right, or the timings compare different work."""
    page = store.list_sessions(tenant, limit=LIMIT)
    if len(page.data) != LIMIT or page.next_cursor is None:
        raise RuntimeError(f"{state}: the first page holds {len(page.data)} sessions")
    adversary = {s.id for s in page.data if s.user_id == ADVERSARY}
    live = {s.id for s in store.list_user_sessions(tenant, ADVERSARY)}
    # The adversary's logins are the tenant's newest sessions: its live ones fill the page.
    if not adversary <= live or len(adversary) != min(len(live), LIMIT):
        raise RuntimeError(f"{state}: the first page does not show the user's live sessions")
    return page


def _first_page(store: SessionStore, tenant: str) -> Callable[[], object]:
    return lambda: store.list_sessions(tenant, limit=LIMIT)


def _round_trips(store: SessionStore, tenant: str) -> dict[str, int]:
    """What one first page costs: batches the store's ``_run`` sends (one round trip each),
    calls in them, positions the bucket scripts (page.lua) report, sessions read whole."""
    cost = {"round_trips": 0, "calls": 0, "positions_found": 0, "sessions_fetched": 0}
    run = store._run

    def counting(batch: Batch) -> list[Any]:
        replies = run(batch)
        cost["round_trips"] += 1
        cost["calls"] += len(batch)
        for call, reply in zip(batch, replies, strict=True):
            if isinstance(call, ScriptCall) and call.script is scripts.PAGE:
                cost["positions_found"] += len(reply) - 3  # done, last, count, positions
            elif not isinstance(call, ScriptCall) and call.args[0] == "HMGET":
                cost["sessions_fetched"] += 1
        return replies

    store._run = counting  # type: ignore[method-assign]
    try:
        store.list_sessions(tenant, limit=LIMIT)
    finally:
        del store._run  # the class's own method again
    return cost
