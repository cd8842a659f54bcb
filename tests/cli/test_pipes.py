"""A reader that stops early (`sessionstore webhooks list | head -1`) ends the command quietly:
no BrokenPipeError traceback, and the exit status of a program stopped by a closed pipe."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from sessionstore import SessionStore, StoreConfig
from tests.api.helpers import run_cli
from tests.cli.helpers import TENANT

CLOSED_PIPE = 141  # 128 + SIGPIPE, as a shell reports `yes | head`


@pytest.fixture
def closed_pipe() -> Iterator[int]:
    """The write end of a pipe whose reader is already gone."""
    read, write = os.pipe()
    os.close(read)
    yield write
    os.close(write)


def _store_args(url: str, prefix: str) -> list[str]:
    return ["--redis-url", url, "--prefix", prefix]


@pytest.mark.parametrize(
    ("setup", "listing"),
    [
        (["apikey", "create", "--tenant", TENANT], ["apikey", "list", "--tenant", TENANT]),
        (
            ["webhooks", "add", "--tenant", TENANT, "--url", "https://example.com/h"],
            ["webhooks", "list", "--tenant", TENANT],
        ),
    ],
)
def test_a_listing_into_a_closed_pipe(
    redis_url: str, prefix: str, closed_pipe: int, setup: list[str], listing: list[str]
) -> None:
    for _ in range(3):
        assert run_cli(*setup, *_store_args(redis_url, prefix)).returncode == 0
    done = subprocess.run(
        [sys.executable, "-m", "sessionstore.cli", *listing, *_store_args(redis_url, prefix)],
        stdout=closed_pipe, stderr=subprocess.PIPE, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (CLOSED_PIPE, "")


def test_events_tail_stops_when_its_reader_does(
    redis_url: str, prefix: str, closed_pipe: int
) -> None:
    store = SessionStore.from_url(redis_url, config=StoreConfig(prefix=prefix, events=True))
    store.create(TENANT, 1, ip_address="203.0.113.7", user_agent="pytest")
    (before,) = store.events(TENANT).data
    tail = subprocess.Popen(
        [sys.executable, "-m", "sessionstore.cli", "events", "tail", "--tenant", TENANT,
         "--after", before.id, *_store_args(redis_url, prefix)],
        stdout=closed_pipe, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        store.create(TENANT, 2, ip_address="203.0.113.7", user_agent="pytest")
        _, stderr = tail.communicate(timeout=60)
    finally:
        if tail.poll() is None:
            tail.kill()
            tail.wait()
        store.close()
    assert (tail.returncode, stderr) == (CLOSED_PIPE, "")
