"""Listing and revoking a fixed user, IP address or page while the data around them grows.

The probes are written once: users with 1, 10 and 100 sessions, and 1,050 sessions from one
IP address (ten and a half pages). Background sessions then fill Redis to each total, and at
every total the same probes are measured beside the SCAN-based floors (naive.py). The store
should cost the same at every total; the floors grow with it.

revoke_all writes its user's sessions before each timed call (untimed) and measures removing
them; its floor writes the same number of its own keys (naive.py) and deletes them with SCAN
MATCH + DEL. The per-user listing floor reads its own copies of the probe users' sessions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from sessionstore.model import Page, Session

from .. import naive
from ..bench import Bench
from ..bulk import create_many
from ..timing import measure, measure_prepared
from ..workload import TENANT, at_address, background, of_user

PROBE_IP = "198.51.100.7"
LIST_USERS = 100  # + sessions per user: user 101 has 1 session, 110 has 10, 200 has 100
REVOKE_USERS = 200_000  # + sessions per user
ADDRESS_USERS = 500_000
NAIVE_TENANT = "naive"


class Scaling:
    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        self.plan = bench.plan
        self.background = 0  # background sessions written so far
        self.probes = 0  # probe sessions, part of every total
        # Every session key of the tenant, as the naive admin listing scans for them.
        self.sessions_pattern = bench.session_pattern(TENANT)

    # -- data ---------------------------------------------------------------------------------

    def seed(self) -> None:
        """The probes: the hot-path sessions, the listed users and the listed address."""
        store, plan = self.bench.store, self.plan
        self.bench.probes = create_many(store, background(0, plan.probe_sessions), keep=True)
        self.background = plan.probe_sessions
        for size in plan.list_sizes:
            created = create_many(store, of_user(LIST_USERS + size, size), keep=True)
            # The naive floor's own copy of the same sessions, under keys that name the user.
            naive.save(self.bench.client, self.bench.prefix, TENANT, (s for s, _ in created))
            self.probes += len(created)
        by_address = plan.page_size * plan.page_depth + plan.page_size // 2
        create_many(store, at_address(PROBE_IP, by_address, ADDRESS_USERS))
        self.probes += by_address

    def grow_to(self, total: int) -> int:
        """Add background sessions until ``total`` sessions are in the tenant; returns it."""
        missing = total - self.background - self.probes
        if missing > 0:
            counter = self.bench.progress.counter(f"loading to {total:,} sessions", missing)
            create_many(
                self.bench.store,
                background(self.background, self.background + missing),
                on_progress=counter.advance,
            )
            counter.finish()
            self.background += missing
        return self.background + self.probes

    # -- measures -----------------------------------------------------------------------------

    def measure(self, total: int) -> dict[str, Any]:
        return {
            "total_sessions": total,
            "keys_in_database": self.bench.client.dbsize(),
            "list_user_sessions": self._list_user(total),
            "admin": self._admin(total),
            "revoke_all": self._revoke_all(total),
        }

    def _list_user(self, total: int) -> dict[str, Any]:
        store, client = self.bench.store, self.bench.client
        results = {}
        for size in self.plan.list_sizes:
            user_id = LIST_USERS + size
            pattern = naive.user_pattern(self.bench.prefix, TENANT, user_id)
            ours = store.list_user_sessions(TENANT, user_id)
            _check(f"user {user_id}", ours, naive.list_user(client, pattern), size)
            results[str(size)] = self._pair(
                f"list_user_sessions, {size} per user @ {total:,}",
                lambda user_id=user_id: store.list_user_sessions(TENANT, user_id),
                lambda pattern=pattern: naive.list_user(client, pattern),
            )
        return results

    def _admin(self, total: int) -> dict[str, Any]:
        results = {}
        for scope, address in (("ip", PROBE_IP), ("tenant", None)):
            starts = {
                "first page": (None, naive.ScanPosition()),
                f"page {self.plan.page_depth}": (
                    self._cursor_of_deep_page(address),
                    self._naive_position_of_deep_page(address),
                ),
            }
            for page, (cursor, position) in starts.items():
                label = f"admin list by {scope}, {page} @ {total:,}"
                results[f"{scope}_{page.replace(' ', '_')}"] = self._admin_page(
                    label, address, cursor, position
                )
        return results

    def _admin_page(
        self, label: str, address: str | None, cursor: str | None, position: naive.ScanPosition
    ) -> dict[str, Any]:
        store, client, limit = self.bench.store, self.bench.client, self.plan.page_size

        def ours() -> Page:
            return store.list_sessions(TENANT, ip_address=address, limit=limit, cursor=cursor)

        def theirs() -> tuple[list[Session], naive.ScanPosition]:
            return naive.page(client, self.sessions_pattern, position, limit, ip_address=address)

        _check(label, ours().data, theirs()[0], limit, address)
        return self._pair(label, ours, theirs)

    def _cursor_of_deep_page(self, address: str | None) -> str:
        cursor = None
        for _ in range(self.plan.page_depth - 1):
            page = self.bench.store.list_sessions(
                TENANT, ip_address=address, limit=self.plan.page_size, cursor=cursor
            )
            cursor = page.next_cursor
            if cursor is None:
                raise RuntimeError(f"fewer than {self.plan.page_depth} pages to list")
        assert cursor is not None
        return cursor

    def _naive_position_of_deep_page(self, address: str | None) -> naive.ScanPosition:
        position = naive.ScanPosition()
        for _ in range(self.plan.page_depth - 1):
            _, position = naive.page(
                self.bench.client,
                self.sessions_pattern,
                position,
                self.plan.page_size,
                ip_address=address,
            )
        return position

    def _revoke_all(self, total: int) -> dict[str, Any]:
        results = {}
        for size in self.plan.revoke_sizes:
            results[str(size)] = {
                "store": self.bench.report(
                    f"revoke_all, {size:,} per user @ {total:,}: store",
                    measure_prepared(
                        lambda size=size: self._prepare_revoke(size),
                        self.plan.scaling,
                        warm_up=False,  # the listings before warmed everything up
                    ),
                ),
                "naive_scan": self.bench.report(
                    f"revoke_all, {size:,} per user @ {total:,}: naive",
                    measure_prepared(
                        lambda size=size: self._prepare_naive_revoke(size),
                        self.plan.naive,
                        warm_up=False,
                    ),
                ),
            }
        return results

    def _prepare_revoke(self, size: int) -> Callable[[], object]:
        store, user_id = self.bench.store, REVOKE_USERS + size
        create_many(store, of_user(user_id, size))

        def revoke() -> None:
            if store.revoke_all(TENANT, user_id) != size:
                raise RuntimeError(f"revoke_all did not revoke {size} sessions")

        return revoke

    def _prepare_naive_revoke(self, size: int) -> Callable[[], object]:
        bench, user_id = self.bench, REVOKE_USERS + size
        template, _ = bench.probes[0]
        naive.save(
            bench.client,
            bench.prefix,
            NAIVE_TENANT,
            (replace(template, id=f"{template.id}-{n}", user_id=user_id) for n in range(size)),
        )
        pattern = naive.user_pattern(bench.prefix, NAIVE_TENANT, user_id)

        def revoke() -> None:
            if naive.revoke_all(bench.client, pattern) != size:
                raise RuntimeError(f"naive revoke did not delete {size} sessions")

        return revoke

    # -- helpers ------------------------------------------------------------------------------

    def _pair(
        self, label: str, store_call: Callable[[], object], naive_call: Callable[[], object]
    ) -> dict[str, Any]:
        return {
            "store": self.bench.report(f"{label}: store", measure(store_call, self.plan.scaling)),
            "naive_scan": self.bench.report(
                f"{label}: naive", measure(naive_call, self.plan.naive, warm_up=False)
            ),
        }


def _check(
    what: str,
    ours: list[Session],
    naive_found: list[Session],
    count: int,
    address: str | None = None,
) -> None:
    """Both ways must find what the probe holds, or the figures compare different work."""
    for way, sessions in (("store", ours), ("naive", naive_found)):
        if len(sessions) != count:
            raise RuntimeError(f"{what}: {way} found {len(sessions)} sessions, not {count}")
        if address is not None and any(s.ip_address != address for s in sessions):
            raise RuntimeError(f"{what}: {way} found sessions of another address")
