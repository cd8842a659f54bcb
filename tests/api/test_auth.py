"""API keys: format, storage, bearer semantics, revocation; in-process on every backend."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import httpx
import pytest

from sessionstore.admin import apikeys
from sessionstore.admin.apikeys import ApiKeys
from tests import backends
from tests.api.helpers import TENANT_A, TENANT_B, admin, bearer, is_problem, typo

LIST = admin(TENANT_A, "/sessions")


def test_minted_keys_have_the_documented_shape() -> None:
    minted = [apikeys.mint() for _ in range(200)]
    for key_id, key in minted:
        assert key.startswith("sk_live_") and len(key) == 8 + 16 + 32 + 6
        assert key[8:24] == key_id
        assert apikeys.parse(key) == key_id
    assert len({key for _, key in minted}) == len(minted)


def test_every_single_character_change_is_caught_offline() -> None:
    _, key = apikeys.mint()
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    for position in range(8, len(key)):
        for replacement in alphabet[:8]:
            if replacement != key[position]:
                changed = key[:position] + replacement + key[position + 1 :]
                assert apikeys.parse(changed) is None, (position, replacement)


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token sk_live_x"],
)
async def test_no_bearer_credential_is_401_without_error_code(
    api: httpx.AsyncClient, header: str | None
) -> None:
    headers = {} if header is None else {"Authorization": header}
    response = await api.get(LIST, headers=headers)
    assert is_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"


async def test_bad_credentials_are_401_invalid_token(api: httpx.AsyncClient, keys: dict) -> None:
    key = keys[TENANT_A]
    flipped = typo(key, 30)
    _, unknown = apikeys.mint()
    # The real key id with another secret and a correct checksum: only the hash can tell.
    body = key[:24] + apikeys.mint()[1][24:56]
    forged = body + apikeys.checksum(body)
    for credential in ("sk_live_xxxxx", flipped, key[:-1], unknown, forged, key.upper()):
        response = await api.get(LIST, headers=bearer(credential))
        assert is_problem(response, 401), credential
        assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'


async def test_scheme_is_case_insensitive(api: httpx.AsyncClient, keys: dict) -> None:
    response = await api.get(LIST, headers={"Authorization": f"bearer {keys[TENANT_A]}"})
    assert response.status_code == 200


async def test_a_revoked_key_stops_working_at_once(
    api: httpx.AsyncClient, api_keys: ApiKeys
) -> None:
    record, key = await api_keys.create(TENANT_A)
    assert (await api.get(LIST, headers=bearer(key))).status_code == 200

    assert await api_keys.revoke(record.id) is True

    assert is_problem(await api.get(LIST, headers=bearer(key)), 401)
    assert await api_keys.revoke(record.id) is False


async def test_keys_are_listed_per_tenant(api_keys: ApiKeys) -> None:
    a1, _ = await api_keys.create(TENANT_A)
    a2, _ = await api_keys.create(TENANT_A)
    b1, _ = await api_keys.create(TENANT_B)
    assert {key.id for key in await api_keys.list(TENANT_A)} == {a1.id, a2.id}
    await api_keys.revoke(a1.id)
    assert [key.id for key in await api_keys.list(TENANT_A)] == [a2.id]
    assert [key.id for key in await api_keys.list(TENANT_B)] == [b1.id]


async def test_redis_holds_only_a_hash_of_the_key(
    api_keys: ApiKeys, client: Any, prefix: str
) -> None:
    _, key = await api_keys.create(TENANT_A)
    secret = key[24:56]
    stored = b""
    for name in backends.keys_of(client, prefix):
        kind = client.type(name)
        if kind == b"hash":
            stored += b"".join(b"".join(pair) for pair in client.hgetall(name).items())
        elif kind == b"set":
            stored += b"".join(client.smembers(name))
    assert hashlib.sha256(key.encode()).digest() in stored
    assert key.encode() not in stored and secret.encode() not in stored


async def test_keys_stay_out_of_logs_and_reprs(
    api: httpx.AsyncClient, api_keys: ApiKeys, keys: dict, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key = keys[TENANT_A]
    await api.get(LIST, headers=bearer(key))
    await api.get(LIST, headers=bearer(typo(key)))
    record = await api_keys.verify(key)
    assert record is not None
    assert key[24:56] not in caplog.text
    assert key[24:56] not in repr(record) + repr(api_keys)
    assert f"GET {LIST} 200" in caplog.text
