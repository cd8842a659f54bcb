"""Every script is safe to run twice: a retry after a lost reply changes nothing more, and a
remembered script (scripts.py) answers it as it answered the first run.

The client retries a call whose reply was lost (timeout, dropped connection), so the server may
run it twice. Each test builds a call with the store's own core, runs it twice through the raw
client and compares every key of the prefix (values and absolute expiry) after each run.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest

from sessionstore import SessionStore, StoreConfig
from sessionstore._core import operations
from sessionstore._core.operations import Command, ScriptCall
from tests import backends

TENANT = "acme-corp"
USER = 7


@pytest.fixture
def store(client: Any, prefix: str, clock: backends.Clock) -> SessionStore:
    return checked(SessionStore(client, config=StoreConfig(prefix=prefix), clock=clock))


def checked(store: SessionStore) -> SessionStore:
    """A store past its once-only layout check: each flow then starts with its script."""
    store._run_flow(store._core.check_layout())
    return store


def run(client: Any, call: ScriptCall | Command) -> Any:
    if isinstance(call, Command):
        return client.execute_command(*call.args)
    return client.eval(call.script.source, len(call.keys), *call.keys, *call.args)


def snapshot(client: Any, prefix: str) -> dict[bytes, tuple[Any, int]]:
    """Every key of the prefix: its contents and absolute expiry (ms, -1 when none)."""
    state = {}
    for key in backends.keys_of(client, prefix):
        kind = client.type(key)
        if kind == b"hash":
            value: Any = client.hgetall(key)
        elif kind == b"zset":
            value = client.zrange(key, 0, -1, withscores=True)
        else:
            value = client.get(key)
        state[key] = (value, client.execute_command("PEXPIRETIME", key))
    return state


def run_twice(client: Any, prefix: str, calls: list[Any]) -> tuple[list[Any], list[Any]]:
    """Run the calls, then again; the state after both runs must be the same."""
    first = [run(client, call) for call in calls]
    after_first = snapshot(client, prefix)
    second = [run(client, call) for call in calls]
    assert snapshot(client, prefix) == after_first
    return first, second


def flow_batch(flow: Any) -> list[Any]:
    """The first batch a flow would send (the flows of these tests have no earlier step)."""
    return list(next(flow))


def new_session(store: SessionStore) -> tuple[Any, str]:
    return store.create(TENANT, USER, ip_address="198.51.100.4", user_agent="pytest")


def test_create_twice_stores_one_session(store: SessionStore, client: Any, prefix: str) -> None:
    flow = store._core.create(
        TENANT,
        USER,
        ip_address="198.51.100.4",
        user_agent="pytest",
        auth_method="password",
        mfa_verified=False,
    )
    batch = flow_batch(flow)
    first, second = run_twice(client, prefix, batch)
    assert first[0] == [1, 0] and second[0] == [0]  # the retry is recognised and a no-op
    assert len(store.list_user_sessions(TENANT, USER)) == 1


def test_create_never_overwrites_a_live_session(
    store: SessionStore, client: Any, prefix: str
) -> None:
    existing, token = new_session(store)
    flow = store._core.create(
        TENANT,
        USER,  # ids embed the user's bucket: only ids of one bucket can collide
        ip_address="192.0.2.1",
        user_agent="attacker",
        auth_method="sso",
        mfa_verified=True,
    )
    create = flow_batch(flow)[0]
    # The existing id with another secret and other fields: what a colliding draw would write.
    collision = dataclasses.replace(
        create,
        keys=(store._core.keys.session(TENANT, existing.id), *create.keys[1:]),
    )
    before = snapshot(client, prefix)
    assert run(client, collision) == [-1]
    assert snapshot(client, prefix) == before
    assert store.validate(TENANT, token) == existing


def test_create_draws_again_when_an_id_is_taken(
    store: SessionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    existing, token = new_session(store)
    real_new_session = operations.new_session
    draws = iter([(existing.id, "sst_unused", b"\x00" * 32)])

    def colliding_then_real(bucket: str) -> tuple[str, str, bytes]:
        return next(draws, None) or real_new_session(bucket)

    monkeypatch.setattr(operations, "new_session", colliding_then_real)
    fresh, fresh_token = new_session(store)
    assert next(draws, None) is None  # the colliding id was drawn, and refused
    assert fresh.id != existing.id
    assert store.validate(TENANT, token) == existing
    assert store.validate(TENANT, fresh_token).id == fresh.id


def test_validate_twice_touches_once(client: Any, prefix: str, clock: backends.Clock) -> None:
    config = StoreConfig(prefix=prefix, idle_timeout=timedelta(minutes=10))
    store = checked(SessionStore(client, config=config, clock=clock))
    _, token = new_session(store)
    clock.advance(config.touch_interval.total_seconds() + 1)
    call, _ = store._core.validate_call(TENANT, token)
    first, second = run_twice(client, prefix, [call])
    assert first == second and first[0]
    session = store.validate(TENANT, token)
    assert session is not None and session.last_active_at.timestamp() == pytest.approx(
        clock.now, abs=0.001
    )


def test_revoke_twice(store: SessionStore, client: Any, prefix: str) -> None:
    session, token = new_session(store)
    kept, kept_token = new_session(store)
    first, second = run_twice(
        client, prefix, flow_batch(store._core.revoke(TENANT, USER, session.id))
    )
    assert first == second == [1]  # a retry of the call gets its answer (lib.lua: remember)
    assert [
        run(client, call) for call in flow_batch(store._core.revoke(TENANT, USER, session.id))
    ] == [0]  # another call does not
    assert store.validate(TENANT, token) is None
    assert store.validate(TENANT, kept_token) == kept


def test_revoke_all_twice(store: SessionStore, client: Any, prefix: str) -> None:
    tokens = [new_session(store)[1] for _ in range(3)]
    kept, kept_token = new_session(store)
    flow = store._core.revoke_all(TENANT, USER, except_session_id=kept.id)
    first, second = run_twice(client, prefix, flow_batch(flow))
    assert first == second == [[3, 0]]
    again = store._core.revoke_all(TENANT, USER, except_session_id=kept.id)
    assert [run(client, call) for call in flow_batch(again)] == [[0, 0]]
    assert all(store.validate(TENANT, token) is None for token in tokens)
    assert store.validate(TENANT, kept_token) == kept


def test_a_listing_page_twice(
    store: SessionStore, client: Any, prefix: str, clock: backends.Clock
) -> None:
    """A page drops what has ended as it reads; read again, it drops nothing more."""
    ended, _ = new_session(store)
    clock.advance(store.config.lifetime.total_seconds() + 1)
    live, _ = new_session(store)
    flow = store._core.list_sessions(TENANT, ip_address="198.51.100.4")
    first, second = run_twice(client, prefix, flow_batch(flow))
    assert first == second
    assert [s.id for s in store.list_sessions(TENANT).data] == [live.id]
    assert store.get(TENANT, ended.id) is None


def test_update_twice(store: SessionStore, client: Any, prefix: str) -> None:
    session, token = new_session(store)
    first, second = run_twice(
        client, prefix, flow_batch(store._core.update(TENANT, session.id, mfa_verified=True))
    )
    assert first == second == [1]
    assert store.validate(TENANT, token).mfa_verified


def test_a_memo_deleted_outside_the_scripts_costs_only_the_retrys_answer(
    store: SessionStore, client: Any, prefix: str
) -> None:
    """Its bound, when broken: the retry runs again (changing nothing, as every script) and
    answers for what is left, as before memos."""
    session, token = new_session(store)
    (revoke,) = flow_batch(store._core.revoke(TENANT, USER, session.id))
    assert run(client, revoke) == 1
    client.delete(revoke.keys[-1])  # the call's memo (flows.ScriptCall)
    before = snapshot(client, prefix)
    assert run(client, revoke) == 0
    after = snapshot(client, prefix)
    after.pop(revoke.keys[-1].encode())  # the second run's memo
    assert after == before
    assert store.validate(TENANT, token) is None
