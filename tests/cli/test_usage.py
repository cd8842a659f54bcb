"""Mistakes on the command line: each is one line on stderr and exit status 2, before any
Redis is asked, and the same mistake gets the same status in every command."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.helpers import unused_port
from tests.cli.helpers import REDIS_COMMANDS, TENANT, run

SECONDS_FROM_0 = "a number of seconds from 0 to 86400"


@pytest.fixture(autouse=True)
def no_settings_from_the_caller(monkeypatch: Any) -> None:
    """Only what a test sets: none of the caller's SESSIONSTORE_ variables."""
    for variable in ("REDIS_URL", "PREFIX", "PORT", "WAIT", "EMBEDDED", "DEMO", "LOG_LEVEL"):
        monkeypatch.delenv(f"SESSIONSTORE_{variable}", raising=False)


def _closed() -> list[str]:
    """A Redis URL on a loopback port nothing listens on: a mistake must be found first."""
    return ["--redis-url", f"redis://127.0.0.1:{unused_port()}"]


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["serve", "--redis-url", "http://127.0.0.1:6379"], "unix://, redis+cluster://, "),
        (["serve", "--redis-url", "redis://127.0.0.1:port/0"], "bad Redis URL: Port"),
        (["serve", "--demo", "--redis-url", "redis://127.0.0.1:6379/0"], "embedded store only"),
        (["apikey", "list", "--tenant", "a", "--redis-url", "ftp://x"], "a Redis URL starts"),
        (["serve", "--events", "--sweep-every", "0"], "--sweep-every: a number of seconds from 1"),
        (["serve", "--events", "--sweep-every", "-5"], "--sweep-every: a number of seconds from"),
        (["serve", "--events", "--sweep-every", "soon"], "--sweep-every: a number of seconds"),
        (["serve", "--port", "99999"], "--port: a port number from 0 to 65535"),
        (["serve", "--port", "http"], "--port: a port number from 0 to 65535"),
        (["serve", "--port", "-1"], "--port: a port number from 0 to 65535"),
        (["serve", "--metrics-port", "-1"], "--metrics-port: a port number from 0 to 65535"),
        (["serve", "--log-level", "loud"], "--log-level: invalid choice: 'loud'"),
        (["webhooks", "run", "--log-level", "loud"], "--log-level: invalid choice: 'loud'"),
        (["serve", "--log-format", "xml"], "--log-format: invalid choice: 'xml'"),
        (["serve", "--wait", "-1"], f"--wait: {SECONDS_FROM_0}"),
        (["webhooks", "run", "--wait", "-1"], f"--wait: {SECONDS_FROM_0}"),
        (["webhooks", "run", "--wait", "nan"], f"--wait: {SECONDS_FROM_0}"),
        (["webhooks", "run", "--timeout", "0"], "--timeout: a number of seconds from"),
        (["webhooks", "run", "--timeout", "-3"], "--timeout: a number of seconds from"),
        (["serve", "--near-cache-size", "-1"], "--near-cache-size"),
        (["serve", "--rate-per-key", "lots"], "--rate-per-key: rate must look like 1000/10s"),
        (["serve", "--no-such-option"], "--no-such-option"),
        (["no-such-command"], "no-such-command"),
        (["apikey", "create"], "--tenant"),
        (
            ["webhooks", "add", "--tenant", TENANT, "--url", "https://example.com/", "--types"],
            "--types",
        ),  # fmt: skip
    ],
)
def test_bad_options_are_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = run(capsys, *args)
    assert (code, out) == (2, "")
    assert message in _one_line(err)


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379/abc",  # redis-py quietly read this as database 0
        "redis://127.0.0.1:6379/0?db=abc",
        "redis://127.0.0.1:6379/1/2",
        "redis://127.0.0.1:6379/-1",
        "unix:///tmp/redis.sock?db=x",
        "redis+cluster://127.0.0.1:7000/3",  # a cluster has database 0 only
    ],
)
@pytest.mark.parametrize("command", ["apikey list", "events status", "webhooks list"])
def test_a_database_that_is_no_number_is_refused(
    capsys: pytest.CaptureFixture[str], url: str, command: str
) -> None:
    code, out, err = run(capsys, *REDIS_COMMANDS[command], "--redis-url", url)
    assert (code, out) == (2, "")
    assert "database" in _one_line(err)


@pytest.mark.parametrize("command", sorted(REDIS_COMMANDS))
def test_every_redis_command_needs_a_url_and_says_so_the_same_way(
    capsys: pytest.CaptureFixture[str], command: str
) -> None:
    code, out, err = run(capsys, *REDIS_COMMANDS[command])
    assert (code, out) == (2, "")
    line = _one_line(err)
    assert "--redis-url" in line and "SESSIONSTORE_REDIS_URL" in line


@pytest.mark.parametrize("command", [name for name in REDIS_COMMANDS if "--tenant" in
                                     REDIS_COMMANDS[name]])  # fmt: skip
def test_a_bad_tenant_is_refused_before_redis_is_asked(
    capsys: pytest.CaptureFixture[str], command: str
) -> None:
    args = [("Acme Corp" if arg == TENANT else arg) for arg in REDIS_COMMANDS[command]]
    code, out, err = run(capsys, *args, *_closed())
    assert (code, out) == (2, "")
    assert "--tenant" in _one_line(err)


def test_a_bad_limit_names_its_option(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, *REDIS_COMMANDS["webhooks log"], "--limit", "0", *_closed())
    assert (code, out) == (2, "")
    assert "--limit" in _one_line(err)


@pytest.mark.parametrize(
    ("variable", "value", "args"),
    [
        ("SESSIONSTORE_PORT", "http", ["serve", "--embedded"]),
        ("SESSIONSTORE_WAIT", "-1", ["webhooks", "run"]),
        ("SESSIONSTORE_EMBEDDED", "maybe", ["serve"]),
        ("SESSIONSTORE_LOG_LEVEL", "loud", ["serve", "--embedded"]),
        ("SESSIONSTORE_REDIS_URL", "redis://127.0.0.1:6379/abc", ["events", "status"]),
    ],
)
def test_a_bad_value_from_the_environment_names_its_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: Any, variable: str, value: str,
    args: list[str],
) -> None:  # fmt: skip
    monkeypatch.setenv(variable, value)
    code, out, err = run(capsys, *args)
    assert (code, out) == (2, "")
    assert variable in _one_line(err)
