"""A store runs only over keys it reads right, and says so when Redis may delete them."""

from __future__ import annotations

from typing import Any

import pytest

from sessionstore import IncompatibleLayout, SessionStore, StoreConfig, StoreUnavailable

TENANT = "acme-corp"


def test_the_first_store_records_the_layout_and_others_agree(
    client: Any, config: StoreConfig
) -> None:
    first = SessionStore(client, config=config)
    session, token = first.create(TENANT, 1, ip_address="192.0.2.1", user_agent="ua")
    assert client.get(f"{config.prefix}:layout") == f"3:{config.tenant_buckets}".encode()
    second = SessionStore(client, config=config)
    assert second.validate(TENANT, token) == session


def test_a_store_refuses_another_bucket_count(client: Any, config: StoreConfig) -> None:
    SessionStore(client, config=config).create(TENANT, 1, ip_address="192.0.2.1", user_agent="x")
    other = StoreConfig(prefix=config.prefix, tenant_buckets=config.tenant_buckets // 2)
    store = SessionStore(client, config=other)
    # Users would be looked for in the wrong buckets: refused before any operation runs.
    with pytest.raises(IncompatibleLayout, match="configured for '3:64'"):
        store.revoke_all(TENANT, 1)
    with pytest.raises(IncompatibleLayout):
        store.validate(TENANT, "sst_" + "a" * 2 + "B" * 54)


def test_a_store_refuses_keys_of_layout_1(client: Any, config: StoreConfig) -> None:
    client.set(f"{config.prefix}:tag-secret", b"k" * 32)  # what every layout 1 prefix holds
    store = SessionStore(client, config=config)
    with pytest.raises(IncompatibleLayout, match="layout 1") as refused:
        store.list_sessions(TENANT)
    assert isinstance(refused.value, StoreUnavailable)  # HTTP 503 in the admin API
    assert client.get(f"{config.prefix}:layout") is None  # and it wrote nothing
