"""Every Redis error names the Redis (host:port) and says what happened, never a password.

Refused credentials, a database the server does not have and a server that does not answer
are three different mistakes, and each command says which one it met, in one line, exit 1.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from sessionstore import _connection
from sessionstore.errors import StoreUnavailable
from tests import backends
from tests.api.helpers import unused_port
from tests.cli.helpers import REDIS_COMMANDS, host_and_port, run, with_credentials, with_database
from tests.reliability.servers import NO_PERSISTENCE, RedisProcess, start_server

SECRET = "hunter2-do-not-print"
# The commands that stop at once when Redis fails them (tail and run would go on forever).
COMMANDS = {
    **{name: REDIS_COMMANDS[name] for name in ("apikey list", "events status", "webhooks list")},
    "events tail": REDIS_COMMANDS["events tail"],
    "webhooks run": REDIS_COMMANDS["webhooks run"],
    "serve": ["serve", "--port", "0"],
}
WAITING = ("serve", "webhooks run")  # the commands that have --wait


def _fails(capsys: pytest.CaptureFixture[str], command: str, url: str) -> str:
    """The one line the command prints, having exited 1 and printed nothing on stdout."""
    code, out, err = run(capsys, *COMMANDS[command], "--redis-url", url)
    assert (code, out) == (1, ""), err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert SECRET not in err
    return lines[0]


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_refused_credentials_are_named(
    capsys: pytest.CaptureFixture[str], redis_url: str, command: str
) -> None:
    line = _fails(capsys, command, with_credentials(redis_url, f"nobody:{SECRET}"))
    assert f"Redis at {host_and_port(redis_url)} refused the credentials" in line
    assert "does not answer" not in line


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_database_the_server_does_not_have_is_named(
    capsys: pytest.CaptureFixture[str], command: str
) -> None:
    line = _fails(capsys, command, with_database(backends.REDIS_URL, "99"))
    assert f"Redis at {host_and_port(backends.REDIS_URL)} has no database 99" in line


@pytest.mark.parametrize("scheme", ["redis", "redis+cluster"])
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_redis_that_does_not_answer_is_named(
    capsys: pytest.CaptureFixture[str], command: str, scheme: str
) -> None:
    port = unused_port()
    line = _fails(capsys, command, f"{scheme}://:{SECRET}@127.0.0.1:{port}")
    assert line.startswith(f"sessionstore: Redis at 127.0.0.1:{port} does not answer")
    # Only the commands that have --wait suggest it.
    assert ("give --wait SECONDS" in line) == (command in WAITING)


@pytest.fixture
def protected(tmp_path: Path) -> Iterator[RedisProcess]:
    """A private redis-server that wants a password (set once it answers)."""
    server = start_server(tmp_path / "redis", *NO_PERSISTENCE)
    server.client().config_set("requirepass", "the-right-one")
    yield server
    server.stop()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("credentials", "told"),
    [(f":{SECRET}", "refused the credentials"), (f"default:{SECRET}", "refused the credentials"),
     ("", "wants credentials")],
)  # fmt: skip
def test_a_server_that_wants_a_password(
    capsys: pytest.CaptureFixture[str], protected: RedisProcess, credentials: str, told: str
) -> None:
    url = f"redis://127.0.0.1:{protected.port}"
    if credentials:
        url = with_credentials(url, credentials)
    line = _fails(capsys, "apikey list", url)
    assert f"Redis at 127.0.0.1:{protected.port} {told}" in line
    right = with_credentials(f"redis://127.0.0.1:{protected.port}", ":the-right-one")
    assert run(capsys, "events", "status", "--redis-url", right)[:2] == (0, "off\n")


def test_a_failure_after_the_start_names_the_redis_too() -> None:
    """What a store raises mid-command (its own StoreUnavailable) is told the same way."""
    try:
        with _connection.translated():
            raise redis.exceptions.ConnectionError("Connection reset by peer")
    except StoreUnavailable as error:
        told = _connection.explain(error, f"redis://:{SECRET}@127.0.0.1:6390/0")
    assert told == "Redis at 127.0.0.1:6390 does not answer (ConnectionError)"
