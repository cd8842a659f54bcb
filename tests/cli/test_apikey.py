"""`sessionstore apikey create|list|revoke`.

API keys must outlive the command that mints them, so these run on the real backends only;
`serve` is exercised as a real process in tests/api/test_live.py and tests/cli/test_serve.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from sessionstore import AsyncSessionStore
from sessionstore.admin import apikeys
from sessionstore.admin.apikeys import ApiKeys
from tests.cli.helpers import run


def _verify(url: str, prefix: str, key: str) -> apikeys.ApiKey | None:
    async def verify() -> apikeys.ApiKey | None:
        async with AsyncSessionStore.from_url(url) as store:
            return await ApiKeys(store.client, prefix).verify(key)

    return asyncio.run(verify())


def test_create_list_revoke(
    redis_url: str, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    store = ["--redis-url", redis_url, "--prefix", prefix]

    code, out, err = run(capsys, "apikey", "create", "--tenant", "acme-corp", *store)
    key = out.strip()
    key_id = apikeys.parse(key)
    assert code == 0 and key_id is not None
    assert key_id in err and key not in err  # the key is on stdout only, once
    assert _verify(redis_url, prefix, key) == apikeys.ApiKey(key_id, "acme-corp")

    code, out, _ = run(capsys, "apikey", "list", "--tenant", "acme-corp", *store)
    assert code == 0
    assert out.split("\t")[:2] == [key_id, "acme-corp"]
    assert key not in out
    assert run(capsys, "apikey", "list", "--tenant", "globex", *store)[1] == ""

    assert run(capsys, "apikey", "revoke", key_id, *store)[:2] == (0, f"revoked {key_id}\n")
    assert _verify(redis_url, prefix, key) is None
    assert run(capsys, "apikey", "revoke", key_id, *store)[0] == 1
    assert run(capsys, "apikey", "list", "--tenant", "acme-corp", *store)[1] == ""


def test_the_url_can_come_from_the_environment(
    redis_url: str, prefix: str, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    monkeypatch.setenv("SESSIONSTORE_REDIS_URL", redis_url)
    code, out, _ = run(capsys, "apikey", "create", "--tenant", "acme-corp", "--prefix", prefix)
    assert code == 0
    assert _verify(redis_url, prefix, out.strip()) is not None


def test_the_prefix_can_come_from_the_environment(
    redis_url: str, prefix: str, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    monkeypatch.setenv("SESSIONSTORE_PREFIX", prefix)
    code, out, _ = run(
        capsys, "apikey", "create", "--tenant", "acme-corp", "--redis-url", redis_url
    )
    assert code == 0
    assert _verify(redis_url, prefix, out.strip()) is not None


def test_a_bad_tenant_is_a_usage_error(
    redis_url: str, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["apikey", "create", "--tenant", "Acme Corp", "--redis-url", redis_url]
    code, out, err = run(capsys, *args, "--prefix", prefix)
    assert (code, out) == (2, "")
    assert "tenant" in err
