"""Validate in a process that has never seen the session: plain reads, no script, unless a
touch is due or the session ended; and what a key changed outside the scripts does to it."""

from __future__ import annotations

from typing import Any

import pytest

from sessionstore import SessionStore, StoreConfig
from sessionstore._core import tokens
from sessionstore._core.keys import random_part
from tests import backends
from tests.store.test_store import TENANT, count_calls, login


@pytest.fixture
def elsewhere(client: Any, config: StoreConfig, clock: backends.Clock) -> SessionStore:
    """The process that logged the user in."""
    return SessionStore(client, config=config, clock=clock)


@pytest.fixture
def here(client: Any, config: StoreConfig, clock: backends.Clock) -> SessionStore:
    """A fresh process, its layout check done, that has seen no session yet."""
    store = SessionStore(client, config=config, clock=clock)
    store.validate(TENANT, "sst_" + "a" * 2 + "B" * 54)
    return store


def ownerless(token: str) -> str:
    """The same token as a store issued it before tokens named their owner."""
    split = len(tokens.TOKEN_PREFIX) + tokens.BUCKET_LEN + tokens.RANDOM_LEN
    return token[:split] + token[split + tokens.OWNER_LEN :]


def test_a_token_names_its_owner(elsewhere: SessionStore) -> None:
    session, token = login(elsewhere, user_id=2**63 - 1)
    parsed = tokens.parse_token(token)
    assert parsed is not None and parsed.owner == 2**63 - 1 and parsed.session_id == session.id
    assert tokens.parse_token(ownerless(token)) == tokens.ParsedToken(
        session.id, parsed.secret_hash
    )


def test_first_sight_is_one_round_trip_of_plain_reads(
    elsewhere: SessionStore, here: SessionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, token = login(elsewhere)
    calls = count_calls(here, monkeypatch)
    assert here.validate(TENANT, token) == session
    assert calls == ["pipeline"]


def test_first_sight_of_a_session_due_a_touch_runs_the_script(
    elsewhere: SessionStore,
    here: SessionStore,
    clock: backends.Clock,
    config: StoreConfig,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    session, token = login(elsewhere)
    clock.advance(config.touch_interval.total_seconds())
    calls = count_calls(here, monkeypatch)
    touched = here.validate(TENANT, token)
    assert touched is not None and touched.last_active_at > session.last_active_at
    assert calls[0] == "pipeline" and calls[-1] == "evalsha"  # (after loading it, if new)


def test_a_token_from_before_owners_validates_in_two_plain_reads(
    elsewhere: SessionStore, here: SessionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, token = login(elsewhere)
    calls = count_calls(here, monkeypatch)
    assert here.validate(TENANT, ownerless(token)) == session
    assert calls == ["hgetall", "zscore"]


def test_a_token_whose_owner_was_changed_is_refused(
    elsewhere: SessionStore, here: SessionStore
) -> None:
    session, token = login(elsewhere, user_id=456)
    login(elsewhere, user_id=457)  # the other user has an index of their own
    forged = tokens.owned(ownerless(token), 457)
    assert here.validate(TENANT, forged) is None
    assert here.validate(TENANT, token) == session  # the real one still works


@pytest.mark.parametrize("form", ["owned", "ownerless"])
def test_an_entry_removed_outside_the_scripts_ends_the_session_at_first_sight(
    elsewhere: SessionStore, here: SessionStore, client: Any, form: str
) -> None:
    """The user index decides, on first sight as on every later validate."""
    session, token = login(elsewhere)
    keys = elsewhere._core.keys
    client.zrem(keys.user_index(TENANT, 456), random_part(session.id))
    assert here.validate(TENANT, token if form == "owned" else ownerless(token)) is None
    assert not client.exists(keys.session(TENANT, session.id))  # and the script dropped it


def test_a_hash_cut_short_outside_the_scripts_never_validates(
    elsewhere: SessionStore, here: SessionStore, client: Any
) -> None:
    session, token = login(elsewhere)
    client.hdel(elsewhere._core.keys.session(TENANT, session.id), "c")
    assert here.validate(TENANT, token) is None
    assert elsewhere.validate(TENANT, token) is None  # nor where it was known


def test_a_hash_cut_short_is_refused_by_the_script_too(
    elsewhere: SessionStore, client: Any, clock: backends.Clock, config: StoreConfig
) -> None:
    session, token = login(elsewhere)
    client.hdel(elsewhere._core.keys.session(TENANT, session.id), "am")
    clock.advance(config.touch_interval.total_seconds())  # due a touch: the script answers
    assert elsewhere.validate(TENANT, token) is None
