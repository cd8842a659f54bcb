"""create, with user agents the device cache holds and with new ones, beside the raw writes.

The floor writes the same hash fields with HSET + PEXPIREAT and indexes the session in its
user's index with ZADD, in one pipeline, under the store's own key names (keys.py): the I/O of
a create, with no id drawing, hashing, parsing, cap or bucket index upkeep.
Sessions go to a tenant of their own, deleted afterwards, so the listing data stays as loaded.

Create at the cap: under ``max_sessions_per_user`` 100, one user already holds 100 sessions,
so each create evicts the session that ends soonest, beside creates for users with no session
at all (a new user each call) on the same store; the two should cost about the same.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from itertools import count
from typing import Any

from sessionstore._core.codec import session_fields
from sessionstore._core.tokens import RANDOM_LEN, SESSION_PREFIX

from ..bench import Bench
from ..bulk import create_many, delete_matching
from ..workload import (
    COMMON_USER_AGENTS,
    SESSIONS_PER_IP,
    SESSIONS_PER_USER,
    fresh_user_agent,
    of_user,
)
from ..workload import ip_address as nth_ip_address

TENANT = "create"
RAW_USER_BASE = 10_000_000  # the floor's users, apart from the store's
CAP = 100  # max_sessions_per_user of the create-at-cap measures (the store's default)
AT_CAP_USER = 20_000_000
NEW_USER_BASE = 20_000_001  # a user with no session for every create


def run(bench: Bench) -> dict[str, Any]:
    numbers = count()
    store = bench.store

    def create(user_agent: Callable[[int], str]) -> Callable[[], object]:
        def call() -> object:
            number = next(numbers)
            return store.create(
                TENANT,
                number // SESSIONS_PER_USER,
                ip_address=nth_ip_address(number // SESSIONS_PER_IP),
                user_agent=user_agent(number),
            )

        return call

    raw = bench.raw_client()
    measures = {
        "cached_user_agent": create(lambda n: COMMON_USER_AGENTS[n % len(COMMON_USER_AGENTS)]),
        "uncached_user_agent": create(lambda n: fresh_user_agent()),
        "raw_pipeline": _raw_create(bench, raw),
        **_at_cap(bench),
    }
    try:
        measured = bench.compare("create", measures, bench.plan.steady)
        held = len(bench.store.list_user_sessions(TENANT, AT_CAP_USER))
        if held != CAP:  # else the creates at the cap did not evict, and measured less
            raise RuntimeError(f"the user at the cap holds {held} sessions, not {CAP}")
        return measured
    finally:
        raw.close()
        delete_matching(bench.client, bench.tenant_pattern(TENANT))


def _raw_create(bench: Bench, raw: Any) -> Callable[[], object]:
    template, _ = bench.probes[0]
    expires = int(template.expires_at.timestamp() * 1000)
    fields = ["h", secrets.token_bytes(32), *session_fields(template, expires)]
    numbers = count()

    def call() -> object:
        number = next(numbers)
        user_id = RAW_USER_BASE + number // SESSIONS_PER_USER
        random_part = f"{number:0{RANDOM_LEN}d}"
        session_id = f"{SESSION_PREFIX}{bench.keys.bucket_of(TENANT, user_id)}{random_part}"
        pipe = raw.pipeline(transaction=False)
        key = bench.keys.session(TENANT, session_id)
        pipe.execute_command("HSET", key, *fields)
        pipe.execute_command("PEXPIREAT", key, expires)
        pipe.execute_command("ZADD", bench.keys.user_index(TENANT, user_id), expires, random_part)
        return pipe.execute()

    return call


def _at_cap(bench: Bench) -> dict[str, Callable[[], object]]:
    """Creates for a user holding ``CAP`` sessions (each evicts one) and for new users."""
    capped = bench.store_with(max_sessions_per_user=CAP)
    create_many(capped, of_user(AT_CAP_USER, CAP, tenant=TENANT))
    numbers = count()

    def call(user_id: int) -> object:
        number = next(numbers)
        return capped.create(
            TENANT,
            user_id,
            ip_address=nth_ip_address(number // SESSIONS_PER_IP),
            user_agent=COMMON_USER_AGENTS[number % len(COMMON_USER_AGENTS)],
        )

    new_users = count(NEW_USER_BASE)
    return {
        f"new_user_cap_{CAP}": lambda: call(next(new_users)),
        f"user_at_cap_{CAP}": lambda: call(AT_CAP_USER),
    }
