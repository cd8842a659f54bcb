"""`sessionstore apikey create|list|revoke` and the command line itself.

API keys must outlive the command that mints them, so these run on the real backends only;
`serve` is exercised as a real process in tests/api/test_live.py.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from sessionstore import AsyncSessionStore, SessionStore, StoreConfig
from sessionstore.admin import apikeys
from sessionstore.admin.apikeys import ApiKeys
from sessionstore.admin.ratelimit import Rate
from sessionstore.cli import build_parser, main, rate
from tests import backends
from tests.api.helpers import REAL_BACKENDS, unused_port


@pytest.fixture(params=REAL_BACKENDS)
def redis_url(request: pytest.FixtureRequest, prefix: str) -> Iterator[str]:
    client = backends.sync_client(request.param)
    url = backends.url_for(request.param)
    assert url is not None
    yield url
    backends.delete_prefix(client, prefix)
    client.close()


def _verify(url: str, prefix: str, key: str) -> apikeys.ApiKey | None:
    async def verify() -> apikeys.ApiKey | None:
        async with AsyncSessionStore.from_url(url) as store:
            return await ApiKeys(store.client, prefix).verify(key)

    return asyncio.run(verify())


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """main() in this process; argparse's own refusals exit, as they do from a shell."""
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_create_list_revoke(
    redis_url: str, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    store = ["--redis-url", redis_url, "--prefix", prefix]

    code, out, err = _run(capsys, "apikey", "create", "--tenant", "acme-corp", *store)
    key = out.strip()
    key_id = apikeys.parse(key)
    assert code == 0 and key_id is not None
    assert key_id in err and key not in err  # the key is on stdout only, once
    assert _verify(redis_url, prefix, key) == apikeys.ApiKey(key_id, "acme-corp")

    code, out, _ = _run(capsys, "apikey", "list", "--tenant", "acme-corp", *store)
    assert code == 0
    assert out.split("\t")[:2] == [key_id, "acme-corp"]
    assert key not in out
    assert _run(capsys, "apikey", "list", "--tenant", "globex", *store)[1] == ""

    assert _run(capsys, "apikey", "revoke", key_id, *store)[:2] == (0, f"revoked {key_id}\n")
    assert _verify(redis_url, prefix, key) is None
    assert _run(capsys, "apikey", "revoke", key_id, *store)[0] == 1
    assert _run(capsys, "apikey", "list", "--tenant", "acme-corp", *store)[1] == ""


def test_the_url_can_come_from_the_environment(
    redis_url: str, prefix: str, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    monkeypatch.setenv("SESSIONSTORE_REDIS_URL", redis_url)
    code, out, _ = _run(capsys, "apikey", "create", "--tenant", "acme-corp", "--prefix", prefix)
    assert code == 0
    assert _verify(redis_url, prefix, out.strip()) is not None


def test_apikey_commands_refuse_the_embedded_store(monkeypatch: Any) -> None:
    monkeypatch.delenv("SESSIONSTORE_REDIS_URL", raising=False)
    with pytest.raises(SystemExit, match="--redis-url"):
        main(["apikey", "create", "--tenant", "acme-corp"])


def test_a_bad_tenant_is_a_usage_error(
    redis_url: str, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["apikey", "create", "--tenant", "Acme Corp", "--redis-url", redis_url]
    code, out, err = _run(capsys, *args, "--prefix", prefix)
    assert (code, out) == (2, "")
    assert "tenant" in err


def test_an_unreachable_redis_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"redis://127.0.0.1:{unused_port()}"
    code, out, err = _run(capsys, "apikey", "list", "--tenant", "acme-corp", "--redis-url", url)
    assert (code, out) == (1, "")
    assert "unavailable" in err


def test_serve_options() -> None:
    args = build_parser().parse_args(
        ["serve", "--port", "0", "--demo", "--rate-per-key", "5/1s", "--prefix", "p"]
    )
    assert (args.port, args.demo, args.prefix, args.host) == (0, True, "p", "127.0.0.1")
    assert args.rate_per_key == Rate(5, 1)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--rate-per-key", "lots"])


SWEEP_RANGE = "--sweep-every: a number of seconds from 1 to 86400"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["serve", "--redis-url", "http://127.0.0.1:6379"], "unix://, redis+cluster://, "),
        (["serve", "--redis-url", "redis://127.0.0.1:port/0"], "bad Redis URL: Port"),
        (["serve", "--demo", "--redis-url", "redis://127.0.0.1:6379/0"], "embedded store only"),
        (["apikey", "list", "--tenant", "a", "--redis-url", "ftp://x"], "a Redis URL starts"),
        (
            ["serve", "--events", "--sweep-every", "0"],
            "--sweep-every: a number of seconds from 1",
        ),
        (
            ["serve", "--events", "--sweep-every", "-5"],
            "--sweep-every: a number of seconds from 1",
        ),
        (
            ["serve", "--events", "--sweep-every", "soon"],
            "--sweep-every: a number of seconds from 1",
        ),
        (["serve", "--port", "99999"], "--port: a port number from 0 to 65535"),
        (["serve", "--port", "http"], "--port: a port number from 0 to 65535"),
        (["serve", "--metrics-port", "-1"], "--metrics-port: a port number from 0 to 65535"),
        (["serve", "--log-level", "loud"], "--log-level: invalid choice: 'loud'"),
        (["serve", "--wait", "-1"], "--wait: a number of seconds from 0 to 86400"),
        (["webhooks", "run", "--wait", "-1"], "--wait: a number of seconds from 0 to 86400"),
    ],
)
def test_bad_urls_and_options_are_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = _run(capsys, *args)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and message in err


def test_every_serve_option_comes_from_the_environment(monkeypatch: Any) -> None:
    for variable, value in {
        "SESSIONSTORE_REDIS_URL": "redis://127.0.0.1:6390/2",
        "SESSIONSTORE_PREFIX": "envprefix",
        "SESSIONSTORE_HOST": "127.0.0.2",
        "SESSIONSTORE_PORT": "9099",
        "SESSIONSTORE_WAIT": "2.5",
        "SESSIONSTORE_RATE_PER_KEY": "7/1s",
        "SESSIONSTORE_LOG_LEVEL": "debug",
    }.items():
        monkeypatch.setenv(variable, value)
    args = build_parser().parse_args(["serve"])
    assert (args.redis_url, args.prefix, args.host, args.port, args.wait, args.log_level) == (
        "redis://127.0.0.1:6390/2", "envprefix", "127.0.0.2", 9099, 2.5, "debug",
    )  # fmt: skip
    assert args.rate_per_key == rate("7/1s")
    flags = build_parser().parse_args(["serve", "--port", "1234", "--prefix", "flag"])
    assert (flags.port, flags.prefix) == (1234, "flag")  # a flag wins over the variable


def test_serve_help_names_each_variable(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    for variable in ("REDIS_URL", "PREFIX", "HOST", "PORT", "WAIT", "DEMO", "RATE_PER_KEY",
                     "RATE_PER_TENANT", "RATE_FAILED_AUTH", "LOG_LEVEL", "LOG_FORMAT", "EMBEDDED",
                     "METRICS_PORT", "EVENTS", "NEAR_CACHE_SIZE", "SWEEP_EVERY"):  # fmt: skip
        assert f"$SESSIONSTORE_{variable}" in shown


def test_events_tail_prints_each_new_event_as_a_json_line(redis_url: str, prefix: str) -> None:
    store = SessionStore.from_url(redis_url, config=StoreConfig(prefix=prefix, events=True))
    store.create("acme-corp", 1, ip_address="203.0.113.7", user_agent="pytest")
    (before,) = store.events("acme-corp").data
    command = [sys.executable, "-m", "sessionstore.cli", "events", "tail", "--tenant"]
    command += ["acme-corp", "--after", before.id, "--redis-url", redis_url, "--prefix", prefix]
    tail = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        session, _ = store.create("acme-corp", 2, ip_address="203.0.113.7", user_agent="pytest")
        store.revoke("acme-corp", 2, session.id, actor="support-desk")
        assert tail.stdout is not None
        lines = [json.loads(tail.stdout.readline()) for _ in range(2)]
    finally:
        tail.terminate()
        tail.wait(timeout=10)
        store.close()
    assert [(line["type"], line["sessionId"], line["actor"]) for line in lines] == [
        ("session.created", session.id, "user"),
        ("session.revoked", session.id, "support-desk"),
    ]


def test_events_can_be_turned_on_and_off_for_the_deployment(
    redis_url: str, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    store = ["--redis-url", redis_url, "--prefix", prefix]
    assert _run(capsys, "events", "status", *store) == (0, "off\n", "")
    assert _run(capsys, "events", "on", *store) == (0, "on\n", "")
    app = SessionStore.from_url(redis_url, config=StoreConfig(prefix=prefix))
    try:
        assert app.events_enabled()
        assert _run(capsys, "events", "off", *store) == (0, "off\n", "")
        assert not app.events_enabled()
    finally:
        app.close()


def test_a_metrics_port_in_use_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        code, out, err = _run(capsys, "serve", "--embedded", "--metrics-port", port)
    assert (code, out) == (2, "")
    # (the embedded store's warning may come first)
    assert "Traceback" not in err and f"--metrics-port {port}" in err.strip().splitlines()[-1]
