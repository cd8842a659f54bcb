"""Running the real command line in the test's process or as its own, and URLs to point it at."""

from __future__ import annotations

import sys
import urllib.parse

import pytest

from sessionstore.cli import main

TENANT = "acme-corp"
# Every command that works on the deployment's Redis, with what it needs besides a URL.
REDIS_COMMANDS = {
    "apikey create": ["apikey", "create", "--tenant", TENANT],
    "apikey list": ["apikey", "list", "--tenant", TENANT],
    "apikey revoke": ["apikey", "revoke", "0123456789abcdef"],
    "events tail": ["events", "tail", "--tenant", TENANT],
    "events on": ["events", "on"],
    "events off": ["events", "off"],
    "events status": ["events", "status"],
    "migrate": ["migrate"],
    "webhooks add": ["webhooks", "add", "--tenant", TENANT, "--url", "https://example.com/h"],
    "webhooks list": ["webhooks", "list", "--tenant", TENANT],
    "webhooks remove": ["webhooks", "remove", "--tenant", TENANT, "wh_0000000000000000"],
    "webhooks log": ["webhooks", "log", "--tenant", TENANT, "wh_0000000000000000"],
    "webhooks run": ["webhooks", "run"],
}


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``sessionstore ARGS`` in this process: (exit status, stdout, stderr).

    A SystemExit is turned into the status a shell would see (its message on stderr), so a
    command that exits instead of returning is judged by the same assertions."""
    try:
        code = main(list(args))
    except SystemExit as stopped:
        if isinstance(stopped.code, str):
            print(stopped.code, file=sys.stderr)
        code = stopped.code if isinstance(stopped.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def with_credentials(url: str, credentials: str) -> str:
    """The URL with ``user:password`` (or ``:password``) in front of its host."""
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{credentials}@{rest}"


def with_database(url: str, database: str) -> str:
    return f"{url.rstrip('/')}/{database}"


def host_and_port(url: str) -> str:
    """``127.0.0.1:6379``: what every message about this Redis must name."""
    parsed = urllib.parse.urlsplit(url)
    return f"{parsed.hostname}:{parsed.port or 6379}"
