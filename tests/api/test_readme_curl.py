"""The README's curl examples (Admin API, then Events: incident response) against
``sessionstore serve --demo``, run in the order printed: each must work after the ones
before it (a listing finds what it shows, a revocation finds something to revoke), and the
walkthrough's last steps confirm the revocation."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.api.helpers import ServerProcess

README = Path(__file__).resolve().parents[2] / "README.md"
DEMO_URL = "http://127.0.0.1:8080"


def section(text: str, heading: str) -> str:
    """The README's text under ``heading`` (a ``##`` or ``###`` line), to the next heading of
    the same or a higher level."""
    level = heading.split(" ", 1)[0]
    start = text.index(f"\n{heading}\n")
    following = re.search(rf"\n#{{2,{len(level)}}} ", text[start + len(heading) + 2 :])
    end = len(text) if following is None else start + len(heading) + 2 + following.start()
    return text[start:end]


def curl_commands(text: str) -> list[list[str]]:
    """Each curl command of the section's bash blocks, its continuation lines joined."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL):
        joined = block.replace("\\\n", " ")
        commands += [
            shlex.split(line) for line in joined.splitlines() if line.strip().startswith("curl ")
        ]
    return commands


def run(command: list[str], key: str, url: str, session_id: str | None) -> tuple[int, Any]:
    args = [
        part.replace("sk_live_...", key)
        .replace(DEMO_URL, url)
        .replace("sess_...", session_id or "")
        for part in command[1:]
    ]
    done = subprocess.run(
        ["curl", "-sS", "-w", "\n%{http_code}", *args],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    body, _, status = done.stdout.rpartition("\n")
    return int(status), json.loads(body)


def test_the_curl_examples_work_in_the_order_printed(tmp_path: Path) -> None:
    text = README.read_text()
    commands = [
        *curl_commands(section(text, "## Admin API")),
        *curl_commands(section(text, "### Incident response")),
    ]
    assert len(commands) >= 9
    server = ServerProcess(tmp_path, "--demo")
    try:
        key = re.search(r"sk_live_[0-9A-Za-z]+", server.stdout)
        assert key is not None, server.stdout
        session_id = None
        revoked_ips: set[str] = set()
        for command in commands:
            status, body = run(command, key[0], server.url, session_id)
            where = " ".join(command)
            assert status == 200, (where, status, body)
            target = urlsplit(next(part for part in command if part.startswith(DEMO_URL)))
            query = {name: values[0] for name, values in parse_qs(target.query).items()}
            if "-X" in command:  # a revocation: something was still there to revoke
                assert body.get("revoked") not in (0, False, None), (where, body)
                revoked_ips.add(query.get("ipAddress", ""))
            elif target.path.endswith("/sessions") and query.get("ipAddress") in revoked_ips:
                assert body["data"] == [] and body["totalCount"] == 0, (where, body)  # confirmed
            else:
                assert body["data"], (where, body)  # a listing shows something
            if session_id is None and target.path.endswith("/users/456/sessions"):
                session_id = body["data"][0]["id"]  # "an id from the first answer"
            if query.get("type") == "session.revoked":
                assert {event["actor"] for event in body["data"]} == {f"admin:{key[0][8:24]}"}
    finally:
        server.stop()
