"""What `--help` says is what the commands do."""

from __future__ import annotations

import pytest

from sessionstore._core.kinds import EventType
from tests.cli.helpers import REDIS_COMMANDS, run


def _help(capsys: pytest.CaptureFixture[str], *command: str) -> str:
    code, out, err = run(capsys, *command, "--help")
    assert (code, err) == (0, "")
    return out


def _option_help(text: str, option: str) -> str:
    """The help of one option, on one line: its own line and those indented below it."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"  {option} "))
    end = start + 1
    while end < len(lines) and lines[end].startswith("   "):
        end += 1
    return " ".join(" ".join(lines[start:end]).split())


def test_the_top_level_help_names_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    shown = _help(capsys)
    for command in ("serve", "apikey", "events", "webhooks"):
        assert command in shown


@pytest.mark.parametrize("command", sorted(REDIS_COMMANDS))
def test_commands_that_need_redis_say_the_url_is_required(
    capsys: pytest.CaptureFixture[str], command: str
) -> None:
    words = REDIS_COMMANDS[command][:2]
    shown = _option_help(_help(capsys, *words), "--redis-url")
    assert "required" in shown and "SESSIONSTORE_REDIS_URL" in shown
    assert "default" not in shown  # it has none: without one the command refuses to run


def test_serve_says_when_it_needs_a_url(capsys: pytest.CaptureFixture[str]) -> None:
    shown = _option_help(_help(capsys, "serve"), "--redis-url")
    assert "required unless --embedded or --demo" in shown


def test_serve_help_names_each_variable(capsys: pytest.CaptureFixture[str]) -> None:
    shown = " ".join(_help(capsys, "serve").split())
    for variable in ("REDIS_URL", "PREFIX", "HOST", "PORT", "WAIT", "DEMO", "RATE_PER_KEY",
                     "RATE_PER_TENANT", "RATE_FAILED_AUTH", "LOG_LEVEL", "LOG_FORMAT", "EMBEDDED",
                     "METRICS_PORT", "EVENTS", "NEAR_CACHE_SIZE", "SWEEP_EVERY",
                     "ALLOW_PRIVATE_DESTINATIONS", "ALLOW_METADATA_DESTINATIONS"):  # fmt: skip
        assert f"SESSIONSTORE_{variable}" in shown


def test_the_event_types_are_the_stores_own(capsys: pytest.CaptureFixture[str]) -> None:
    shown = _option_help(_help(capsys, "webhooks", "add"), "--types")
    for name in EventType.type_names():
        assert name in shown


@pytest.mark.parametrize("command", [["serve"], ["webhooks", "run"]])
def test_the_commands_told_to_wait_have_wait(
    capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    assert "SESSIONSTORE_WAIT" in _option_help(_help(capsys, *command), "--wait")
