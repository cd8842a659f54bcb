"""create, with user agents the device cache holds and with new ones, beside the raw writes.

The floor writes the same hash fields with HSET + PEXPIREAT and indexes the id with ZADD, in
one pipeline: the I/O of a create, with no id drawing, hashing, parsing or index upkeep.
Sessions go to a tenant of their own, deleted afterwards, so the listing data stays as loaded.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from itertools import count
from typing import Any

from sessionstore.codec import session_fields

from ..bench import Bench
from ..bulk import delete_matching
from ..workload import COMMON_USER_AGENTS, SESSIONS_PER_IP, SESSIONS_PER_USER, fresh_user_agent
from ..workload import ip_address as nth_ip_address

TENANT = "create"


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
    }
    try:
        return bench.compare("create", measures, bench.plan.steady)
    finally:
        raw.close()
        delete_matching(bench.client, bench.tenant_pattern(TENANT))


def _raw_create(bench: Bench, raw: Any) -> Callable[[], object]:
    template, _ = bench.probes[0]
    expires = int(template.expires_at.timestamp() * 1000)
    fields = ["h", secrets.token_bytes(32), *session_fields(template, expires)]
    tag = template.id[5:15]  # a session id is sess_<tag><random> (tokens.py)
    numbers = count()

    def call() -> object:
        number = next(numbers)
        session_id = f"sess_{tag}{number:022d}"
        pipe = raw.pipeline(transaction=False)
        key = bench.keys.session(TENANT, session_id)
        pipe.execute_command("HSET", key, *fields)
        pipe.execute_command("PEXPIREAT", key, expires)
        index = bench.keys.user_index(TENANT, f"raw{number // SESSIONS_PER_USER:07d}")
        pipe.execute_command("ZADD", index, expires, session_id)
        return pipe.execute()

    return call
