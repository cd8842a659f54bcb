"""RFC 9457 problem details: the one shape of every HTTP error sessionstore answers."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

CONTENT_TYPE = "application/problem+json"


def problem(status: int, detail: str, *, title: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    body.update(extra)
    return body


def problem_bytes(status: int, detail: str, **extra: Any) -> bytes:
    return json.dumps(problem(status, detail, **extra), separators=(",", ":")).encode()
