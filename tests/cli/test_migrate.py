"""`sessionstore migrate`, on the real backends: what it prints, and that it can run again."""

from __future__ import annotations

import pytest

from sessionstore import SessionStore, StoreConfig
from tests.cli.helpers import run


def test_migrate_says_what_it_did_and_runs_again_unchanged(
    redis_url: str, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    where = ["--redis-url", redis_url, "--prefix", prefix]
    assert run(capsys, "migrate", *where) == (0, "nothing to migrate\n", "")
    store = SessionStore.from_url(redis_url, config=StoreConfig(prefix=prefix))
    try:
        session, token = store.create("acme-corp", 1, ip_address="203.0.113.7", user_agent="x")
        assert run(capsys, "migrate", *where) == (0, "layout 3: 1 buckets checked\n", "")
        assert run(capsys, "migrate", *where) == (0, "layout 3: 1 buckets checked\n", "")
        assert store.validate("acme-corp", token) == session
    finally:
        store.close()
