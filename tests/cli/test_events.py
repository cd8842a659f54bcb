"""`sessionstore events tail|on|off|status`, on the real backends."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sessionstore import SessionStore, StoreConfig
from tests.cli.helpers import run


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
    assert run(capsys, "events", "status", *store) == (0, "off\n", "")
    assert run(capsys, "events", "on", *store) == (0, "on\n", "")
    app = SessionStore.from_url(redis_url, config=StoreConfig(prefix=prefix))
    try:
        assert app.events_enabled()
        assert run(capsys, "events", "off", *store) == (0, "off\n", "")
        assert not app.events_enabled()
    finally:
        app.close()
