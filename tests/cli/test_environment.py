"""Every option that had an environment variable still reads it; a flag wins over it."""

from __future__ import annotations

from typing import Any

import click
import pytest

from sessionstore.admin.ratelimit import Rate
from sessionstore.cli import cli


def parsed(*args: str) -> dict[str, Any]:
    """The options ``sessionstore ARGS`` would run with, the environment included."""
    command: click.Command = cli
    words = list(args)
    while isinstance(command, click.Group):
        command = command.commands[words.pop(0)]
    return command.make_context(command.name, words).params


def test_every_serve_option_comes_from_the_environment(monkeypatch: Any) -> None:
    for variable, value in {
        "SESSIONSTORE_REDIS_URL": "redis://127.0.0.1:6390/2",
        "SESSIONSTORE_PREFIX": "envprefix",
        "SESSIONSTORE_HOST": "127.0.0.2",
        "SESSIONSTORE_PORT": "9099",
        "SESSIONSTORE_WAIT": "2.5",
        "SESSIONSTORE_RATE_PER_KEY": "7/1s",
        "SESSIONSTORE_RATE_PER_TENANT": "8/2s",
        "SESSIONSTORE_RATE_FAILED_AUTH": "9/3s",
        "SESSIONSTORE_LOG_LEVEL": "debug",
        "SESSIONSTORE_LOG_FORMAT": "json",
        "SESSIONSTORE_METRICS_PORT": "9464",
        "SESSIONSTORE_SWEEP_EVERY": "5",
        "SESSIONSTORE_NEAR_CACHE_SIZE": "10",
        "SESSIONSTORE_EVENTS": "1",
        "SESSIONSTORE_EMBEDDED": "true",
        "SESSIONSTORE_ALLOW_PRIVATE_DESTINATIONS": "yes",
        "SESSIONSTORE_ALLOW_METADATA_DESTINATIONS": "on",
    }.items():
        monkeypatch.setenv(variable, value)
    options = parsed("serve")
    assert options["redis_url"] == "redis://127.0.0.1:6390/2"
    assert (options["prefix"], options["host"], options["port"]) == ("envprefix", "127.0.0.2", 9099)
    assert (options["wait"], options["sweep_every"], options["near_cache_size"]) == (2.5, 5, 10)
    assert (options["log_level"], options["log_format"]) == ("debug", "json")
    assert options["metrics_port"] == 9464
    assert options["rate_per_key"] == Rate(7, 1)
    assert options["rate_per_tenant"] == Rate(8, 2)
    assert options["rate_failed_auth"] == Rate(9, 3)
    for flag in ("events", "embedded", "allow_private_destinations",
                 "allow_metadata_destinations"):  # fmt: skip
        assert options[flag] is True
    flags = parsed("serve", "--port", "1234", "--prefix", "flag")
    assert (flags["port"], flags["prefix"]) == (1234, "flag")  # a flag wins over the variable


@pytest.mark.parametrize("value", ["0", "false", "no", "off"])
def test_a_flag_variable_can_say_no(monkeypatch: Any, value: str) -> None:
    monkeypatch.setenv("SESSIONSTORE_DEMO", value)
    assert parsed("serve")["demo"] is False


def test_the_defaults(monkeypatch: Any) -> None:
    for variable in ("REDIS_URL", "PREFIX", "HOST", "PORT", "WAIT", "LOG_LEVEL", "DEMO"):
        monkeypatch.delenv(f"SESSIONSTORE_{variable}", raising=False)
    options = parsed("serve")
    assert (options["redis_url"], options["prefix"], options["host"]) == (None, "ss", "127.0.0.1")
    assert (options["port"], options["wait"], options["demo"]) == (8080, 0, False)
    assert options["log_level"] == "info"


def test_webhooks_run_reads_its_variables(monkeypatch: Any) -> None:
    monkeypatch.setenv("SESSIONSTORE_REDIS_URL", "redis://127.0.0.1:6379")
    monkeypatch.setenv("SESSIONSTORE_TIMEOUT", "2.5")
    monkeypatch.setenv("SESSIONSTORE_WAIT", "3")
    monkeypatch.setenv("SESSIONSTORE_ALLOW_PRIVATE_DESTINATIONS", "1")
    options = parsed("webhooks", "run")
    assert (options["timeout"], options["wait"]) == (2.5, 3)
    assert options["allow_private_destinations"] is True


def test_types_take_several_values_after_one_flag() -> None:
    options = parsed(
        "webhooks", "add", "--tenant", "acme-corp", "--url", "https://example.com/",
        "--types", "session.revoked", "session.created,session.expired", "--prefix", "p",
        "--redis-url", "redis://127.0.0.1:6379",
    )  # fmt: skip
    assert options["types"] == ("session.revoked", "session.created", "session.expired")
    assert options["prefix"] == "p"
