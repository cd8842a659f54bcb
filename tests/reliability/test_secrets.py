"""No token, and no token secret, at rest or in reprs.

The server writes everything it can: an AOF fsynced on every write, an uncompressed RDB
(compression would hide a string from a byte search), a verbose log, and a MONITOR capture of
every command it received. Then every file is searched for every token issued during the run.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from sessionstore import AsyncSessionStore, SessionStore, StoreConfig
from sessionstore._core.keys import random_part
from tests.reliability.servers import AOF_ALWAYS, RedisProcess, start_server

TENANT = "acme-corp"

pytestmark = pytest.mark.slow


@pytest.fixture
def verbose_server(tmp_path: Path) -> Iterator[RedisProcess]:
    options = (*AOF_ALWAYS, "--rdbcompression", "no", "--loglevel", "verbose")
    server = start_server(tmp_path / "redis", *options)
    yield server
    server.stop()


@pytest.fixture
def monitor_log(verbose_server: RedisProcess) -> Iterator[Path]:
    """Every command the server receives, as redis-cli MONITOR prints it."""
    path = verbose_server.directory / "monitor.log"
    with path.open("wb") as out:
        monitor = subprocess.Popen(
            ["redis-cli", "-h", "127.0.0.1", "-p", str(verbose_server.port), "monitor"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        yield path
        monitor.terminate()
        monitor.wait(timeout=10)


def exercise(store: SessionStore) -> list[tuple[str, str]]:
    """Every kind of write and read, leaving live, touched and revoked sessions behind."""
    issued = [
        store.create(TENANT, user_id, ip_address="198.51.100.7", user_agent="Mozilla/5.0")
        for user_id in (1, 1, 2, 3, 3)
    ]
    for _, token in issued:
        assert store.validate(TENANT, token) is not None
    store.mark_mfa_verified(TENANT, issued[0][0].id)
    store.revoke(TENANT, 1, issued[1][0].id)
    store.revoke_all(TENANT, 3)
    store.list_sessions(TENANT)
    store.list_user_sessions(TENANT, 1)
    return [(session.id, token) for session, token in issued]


def test_tokens_never_reach_redis_its_files_or_logs(
    verbose_server: RedisProcess,
    monitor_log: Path,
    prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    config = StoreConfig(prefix=prefix, touch_interval=timedelta(0))
    with SessionStore.from_url(verbose_server.url, config=config) as store:
        issued = exercise(store)
        with verbose_server.client() as admin:
            admin.save()
            admin.ping()  # MONITOR has printed the commands above once this answers

    files = {
        path: path.read_bytes() for path in verbose_server.directory.rglob("*") if path.is_file()
    }
    assert any(name.suffix == ".rdb" for name in files) and any(".aof" in n.name for n in files)
    for session_id, token in issued:
        secret = token[-32:]
        # The search works: each session's key is in the AOF and the MONITOR capture at least.
        assert sum(random_part(session_id).encode() in data for data in files.values()) >= 2
        for needle in (token, token[4:], secret):
            hits = [str(path) for path, data in files.items() if needle.encode() in data]
            assert hits == [], f"a token secret was found in {hits}"
            assert needle not in caplog.text


def test_reprs_show_no_secret(prefix: str) -> None:
    config = StoreConfig(prefix=prefix)
    store = SessionStore(config=config)
    session, token = store.create(TENANT, 1, ip_address="198.51.100.7", user_agent="ua")
    async_store = AsyncSessionStore(config=config)
    shown = [
        repr(session),
        str(session.to_dict()),
        repr(store),
        repr(async_store),
        repr(config),
        repr(store._core),
        repr(store._core.validate_call(TENANT, token)),
    ]
    for needle in (token, token[-32:]):
        assert [text for text in shown if needle in text] == []
    assert session.id in repr(session)  # the search works
