"""Registering, listing and removing webhooks, and where they live in Redis (every backend)."""

from __future__ import annotations

import asyncio
from importlib import resources
from typing import Any

import pytest
from redis.crc import key_slot

from sessionstore import AsyncSessionStore, InvalidArgument, InvalidTenant
from sessionstore.webhooks.destinations import DestinationRefused
from sessionstore.webhooks.registry import MAX_PER_TENANT, TooManyWebhooks, Webhooks
from tests import backends
from tests.webhooks.helpers import OTHER, TENANT, session_events

URL = "https://hooks.example.com/sessions"


async def test_add_get_list_remove(hooks: Webhooks) -> None:
    webhook, secret = await hooks.add(TENANT, URL, types=["session.revoked"])
    assert webhook.id.startswith("wh_") and secret.startswith("whsec_")
    assert (webhook.url, webhook.types, webhook.state) == (URL, {"session.revoked"}, "enabled")
    assert await hooks.get(TENANT, webhook.id) == webhook
    assert await hooks.list(TENANT) == [webhook]
    assert secret not in repr(webhook.to_dict())  # shown once, by add, and never again

    everything, _ = await hooks.add(TENANT, URL + "/all")
    assert everything.types is None
    assert [w.id for w in await hooks.list(TENANT)] == [webhook.id, everything.id]

    assert await hooks.remove(TENANT, webhook.id)
    assert await hooks.get(TENANT, webhook.id) is None
    assert not await hooks.remove(TENANT, webhook.id)
    assert await hooks.list(TENANT) == [everything]


async def test_tenants_are_apart(hooks: Webhooks) -> None:
    webhook, _ = await hooks.add(TENANT, URL)
    assert await hooks.get(OTHER, webhook.id) is None
    assert not await hooks.remove(OTHER, webhook.id)
    assert await hooks.log(OTHER, webhook.id) is None
    assert await hooks.list(OTHER) == []
    assert await hooks.get(TENANT, webhook.id) is not None


async def test_unknown_or_malformed_ids_are_simply_not_found(hooks: Webhooks) -> None:
    for webhook_id in ["wh_0000000000000000", "nope", "", "wh_*", "x" * 500]:
        assert await hooks.get(TENANT, webhook_id) is None
        assert await hooks.log(TENANT, webhook_id) is None
        assert not await hooks.remove(TENANT, webhook_id)


async def test_a_new_webhook_starts_after_the_newest_event(
    astore: AsyncSessionStore, clock: backends.Clock, hooks: Webhooks
) -> None:
    before = await session_events(astore, clock, 2)
    webhook, _ = await hooks.add(TENANT, URL)
    assert webhook.cursor == before[-1]
    fresh, _ = await hooks.add("initech", URL)  # no events yet: everything that comes
    assert fresh.cursor == "0-0-00"


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"url": "ftp://example.com"}, "url must be"),
        ({"url": URL, "types": ["session.deleted"]}, "event types are"),
        ({"url": URL, "types": []}, "event types are"),
    ],
)
async def test_bad_registrations_are_refused(
    hooks: Webhooks, options: dict[str, Any], error: str
) -> None:
    with pytest.raises(InvalidArgument, match=error):
        await hooks.add(TENANT, **options)
    assert await hooks.list(TENANT) == []


async def test_a_bad_tenant_is_refused(hooks: Webhooks) -> None:
    with pytest.raises(InvalidTenant):
        await hooks.add("Not A Slug", URL)
    with pytest.raises(InvalidTenant):
        await hooks.list("{acme}")


async def test_private_destinations_need_the_allowance(astore: AsyncSessionStore) -> None:
    strict = Webhooks(astore)
    for url in ["http://127.0.0.1:9000/", "http://localhost/", "http://169.254.169.254/"]:
        with pytest.raises(DestinationRefused):
            await strict.add(TENANT, url)
    assert await strict.list(TENANT) == []
    allowed, _ = await Webhooks(astore, allow_private=True).add(TENANT, "http://127.0.0.1:9/")
    assert await strict.list(TENANT) == [allowed]


async def test_a_tenant_has_at_most_max_webhooks(hooks: Webhooks) -> None:
    for n in range(MAX_PER_TENANT):
        await hooks.add(TENANT, f"{URL}/{n}")
    with pytest.raises(TooManyWebhooks):
        await hooks.add(TENANT, URL)
    assert len(await hooks.list(TENANT)) == MAX_PER_TENANT
    await hooks.add(OTHER, URL)  # another tenant's count is its own


async def test_concurrent_registrations_stop_at_the_cap(
    hooks: Webhooks, client: Any, prefix: str
) -> None:
    """50 registrations at once: exactly MAX_PER_TENANT are taken, the rest refused."""
    results = await asyncio.gather(
        *(hooks.add(TENANT, f"{URL}/{n}") for n in range(50)), return_exceptions=True
    )
    added = [result for result in results if not isinstance(result, BaseException)]
    refused = [result for result in results if isinstance(result, TooManyWebhooks)]
    assert (len(added), len(refused)) == (MAX_PER_TENANT, 50 - MAX_PER_TENANT)
    assert len(await hooks.list(TENANT)) == MAX_PER_TENANT
    assert client.scard(f"{prefix}:{{{TENANT}}}:webhooks") == MAX_PER_TENANT
    # Every refused registration left nothing behind: only the registered records exist.
    records = [key for key in backends.keys_of(client, prefix) if b":webhook:" in key]
    assert len(records) == MAX_PER_TENANT


async def test_registration_stores_the_canonical_url(astore: AsyncSessionStore) -> None:
    hooks = Webhooks(astore, allow_private=True)
    webhook, _ = await hooks.add(TENANT, "http://0177.0.0.1:9/Hook")
    assert webhook.url == "http://127.0.0.1:9/Hook"
    assert [w.url for w in await hooks.list(TENANT)] == ["http://127.0.0.1:9/Hook"]
    with pytest.raises(DestinationRefused, match="--allow-private-destinations"):
        await Webhooks(astore).add(TENANT, "http://2130706433/")
    with pytest.raises(InvalidArgument, match="url must"):
        await hooks.add(TENANT, "http://1.2.3.999/")
    with pytest.raises(DestinationRefused, match="--allow-metadata-destinations"):
        await hooks.add(TENANT, "http://169.254.169.254/")
    assert len(await hooks.list(TENANT)) == 1


def test_the_registration_script_names_keys_of_its_arguments_only() -> None:
    """Registration's script (the cap and the record in one step) touches the two keys it is
    given, both of the tenant's slot: no key name comes from an argument."""
    from sessionstore._core import scripts
    from tests.core.test_slots import key_name_problems

    own = resources.files("sessionstore").joinpath("lua", "webhook_add.lua").read_text()
    assert own.startswith("-- webhook_add.lua:") and "KEYS[1]" in "".join(own.splitlines()[:4])
    assert key_name_problems(own) == []  # (the lib.lua prelude is there, and never called)
    assert scripts.WEBHOOK_ADD.source.decode().endswith(own)
    assert "'TIME'" not in own and "'KEYS'" not in own


async def test_keys_are_under_the_prefix_one_slot_per_tenant(
    astore: AsyncSessionStore, hooks: Webhooks, client: Any, prefix: str
) -> None:
    webhook, _ = await hooks.add(TENANT, URL)
    names = {key.decode() for key in backends.keys_of(client, prefix)}
    base = f"{prefix}:{{{TENANT}}}:webhook"
    assert {f"{prefix}:webhook-tenants", f"{base}s", f"{base}:{webhook.id}"} <= names
    tenant_keys = [name for name in names if f"{{{TENANT}}}" in name]
    assert len({key_slot(name.encode()) for name in tenant_keys}) == 1


async def test_removing_the_last_webhook_leaves_nothing_behind(
    hooks: Webhooks, client: Any, prefix: str
) -> None:
    webhook, _ = await hooks.add(TENANT, URL)
    other, _ = await hooks.add(OTHER, URL)
    assert await hooks.remove(TENANT, webhook.id)
    left = {key.decode() for key in backends.keys_of(client, prefix)}
    assert not [name for name in left if f"{{{TENANT}}}" in name]
    assert client.smembers(f"{prefix}:webhook-tenants") == {OTHER.encode()}
    assert await hooks.remove(OTHER, other.id)
    assert not client.exists(f"{prefix}:webhook-tenants")
