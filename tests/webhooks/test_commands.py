"""`sessionstore webhooks add|list|remove|log|run`, and the deliverer inside `serve --events`.

Webhooks must outlive the command that registers them, so these run on the real backends.
"""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from sessionstore import AsyncSessionStore, StoreConfig
from sessionstore.webhooks.delivery import Deliverer
from sessionstore.webhooks.registry import Webhooks
from tests import backends
from tests.api.helpers import (
    REAL_BACKENDS,
    ServerProcess,
    admin,
    bearer,
    run_cli,
    unused_port,
)
from tests.cli.helpers import run
from tests.webhooks.helpers import FAST, TENANT, wait_until
from tests.webhooks.receiver import Receiver


def test_add_list_remove_log(
    redis_url: str, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    store = ["--redis-url", redis_url, "--prefix", prefix]
    code, out, err = run(
        capsys,
        "webhooks", "add", "--tenant", TENANT, "--url", "https://hooks.example.com/s",
        "--types", "session.revoked", "session.created", *store,
    )  # fmt: skip
    assert code == 0, err
    webhook_id, secret = out.strip().split("\t")
    assert webhook_id.startswith("wh_") and secret.startswith("whsec_")
    assert webhook_id in err and secret not in err  # the secret once, on stdout

    code, out, _ = run(capsys, "webhooks", "list", "--tenant", TENANT, *store)
    assert code == 0 and secret not in out
    fields = out.strip().split("\t")
    assert fields[:3] == [
        webhook_id,
        "https://hooks.example.com/s",
        "session.created,session.revoked",
    ]
    assert fields[-1] == "enabled"

    assert run(capsys, "webhooks", "remove", "--tenant", TENANT, webhook_id, *store)[:2] == (
        0,
        f"removed {webhook_id}\n",
    )
    assert run(capsys, "webhooks", "list", "--tenant", TENANT, *store)[1] == ""

    # An endpoint that answers, and deliveries, so the log has something to say.
    receiver = Receiver()

    async def deliver() -> str:
        await receiver.start()
        try:
            config = StoreConfig(prefix=prefix, events=True)
            async with AsyncSessionStore.from_url(redis_url, config=config) as astore:
                webhook, key = await Webhooks(astore, allow_private=True).add(
                    TENANT, receiver.url + "/hook"
                )
                receiver.secrets["/hook"] = key
                for user_id in range(2):
                    await astore.create(TENANT, user_id, ip_address="203.0.113.7", user_agent="t")
                assert await Deliverer(astore, **FAST).run_once() == 2
            return webhook.id
        finally:
            await receiver.close()

    hook_id = asyncio.run(deliver())
    code, out, _ = run(capsys, "webhooks", "log", "--tenant", TENANT, hook_id, *store)
    lines = [line.split("\t") for line in out.strip().splitlines()]
    assert code == 0 and len(lines) == 2
    assert [(line[2], line[3]) for line in lines] == [("delivered", "200")] * 2
    assert [line[1] for line in reversed(lines)] == receiver.delivered("/hook")
    limited = run(capsys, "webhooks", "log", "--tenant", TENANT, hook_id, "--limit", "1", *store)
    assert len(limited[1].strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["add", "--url", "http://127.0.0.1:8080/"], 2, "loopback"),
        (["add", "--url", "http://10.0.0.1/"], 2, "private"),
        (["add", "--url", "ftp://example.com/"], 2, "url must be"),
        (["add", "--url", "https://example.com/", "--types", "session.nope"], 2, "event types"),
        (["log", "wh_0000000000000000"], 1, "no webhook wh_0000000000000000"),
        (["remove", "nope"], 1, "no webhook nope"),
    ],
)
def test_refusals(
    redis_url: str,
    prefix: str,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    code: int,
    message: str,
) -> None:
    done = run(capsys, "webhooks", *args, "--tenant", TENANT, "--redis-url", redis_url,
                "--prefix", prefix)  # fmt: skip
    assert done[0] == code and done[1] == ""
    assert message in done[2]


def test_private_destinations_with_the_flag(
    redis_url: str, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        capsys, "webhooks", "add", "--tenant", TENANT, "--url", "http://127.0.0.1:8080/",
        "--allow-private-destinations", "--redis-url", redis_url, "--prefix", prefix,
    )  # fmt: skip
    assert code == 0, err


def test_the_metadata_range_needs_its_own_flag(
    redis_url: str, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    store = ["--redis-url", redis_url, "--prefix", prefix]
    add = ["webhooks", "add", "--tenant", TENANT, "--url", "http://169.254.169.254/latest/"]
    code, out, err = run(capsys, *add, "--allow-private-destinations", *store)
    assert (code, out) == (2, "") and "--allow-metadata-destinations" in err
    code, out, err = run(capsys, *add, "--allow-metadata-destinations", *store)
    assert code == 0, err


def test_the_commands_need_a_redis_url(
    monkeypatch: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SESSIONSTORE_REDIS_URL", raising=False)
    code, out, err = run(capsys, "webhooks", "list", "--tenant", TENANT)
    assert (code, out) == (2, "") and "--redis-url" in err


@pytest.mark.parametrize("backend", REAL_BACKENDS, indirect=True)
async def test_webhooks_run_delivers_and_stops_cleanly(
    backend: str, astore: AsyncSessionStore, receiver: Receiver, prefix: str, client: Any
) -> None:
    url = backends.url_for(backend)
    assert url is not None
    webhook, secret = await Webhooks(astore, allow_private=True).add(TENANT, receiver.url + "/h")
    receiver.secrets["/h"] = secret
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sessionstore.cli", "webhooks", "run", "--redis-url", url,
        "--prefix", prefix, "--allow-private-destinations", "--timeout", "2",
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        for user_id in range(2):
            await astore.create(TENANT, user_id, ip_address="203.0.113.7", user_agent="t")
        await wait_until(lambda: len(receiver.delivered("/h")) == 2, "two deliveries")
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()
    assert "delivering webhooks as" in stderr.decode()
    assert all(request.verified for request in receiver.requests)
    lease = f"{prefix}:{{{TENANT}}}:webhook:{webhook.id}:lease"
    assert not client.exists(lease)  # given back on SIGTERM


@pytest.mark.parametrize("backend", REAL_BACKENDS, indirect=True)
async def test_serve_with_events_delivers_webhooks(
    backend: str,
    astore: AsyncSessionStore,
    receiver: Receiver,
    prefix: str,
    client: Any,
    tmp_path: Path,
) -> None:
    url = backends.url_for(backend)
    assert url is not None
    store_args = ["--redis-url", url, "--prefix", prefix]
    minted = run_cli("apikey", "create", "--tenant", TENANT, *store_args)
    key = minted.stdout.strip()
    metrics_port = unused_port()
    server = ServerProcess(
        tmp_path, *store_args, "--events", "--allow-private-destinations",
        "--metrics-port", str(metrics_port), "--sweep-every", "1",
    )  # fmt: skip
    try:
        async with httpx.AsyncClient(base_url=server.url) as http:
            created = await http.post(
                admin(TENANT, "/webhooks"), json={"url": receiver.url + "/h"}, headers=bearer(key)
            )
        assert created.status_code == 201, created.text
        receiver.secrets["/h"] = created.json()["secret"]
        for user_id in range(2):
            await astore.create(TENANT, user_id, ip_address="203.0.113.7", user_agent="t")
        await wait_until(lambda: len(receiver.delivered("/h")) == 2, "two deliveries")
        async with httpx.AsyncClient() as http:
            # Counted once recorded, a moment after the receiver has them.
            for _ in range(500):
                scraped = (await http.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
                if 'sessionstore_webhook_attempts_total{outcome="delivered"} 2.0' in scraped:
                    break
                await asyncio.sleep(0.02)
        assert 'sessionstore_webhook_attempts_total{outcome="delivered"} 2.0' in scraped
        assert "sessionstore_webhook_delivery_lag_seconds_count 2.0" in scraped
    finally:
        # SIGTERM ends the deliverer and the sweep (every second here) at once: no kill needed
        assert server.stop() == -signal.SIGTERM
    assert re.search(r"delivering webhooks as \S+", server.stderr)
    assert all(request.verified for request in receiver.requests)
    lease = f"{prefix}:{{{TENANT}}}:webhook:{created.json()['id']}:lease"
    assert not client.exists(lease)  # stopped before the store closed: the lease given back
