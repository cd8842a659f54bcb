"""RFC 9457 problem details: the one shape of every HTTP error sessionstore answers."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any, Final

__all__ = ["CONTENT_TYPE", "problem", "problem_bytes"]

CONTENT_TYPE: Final = "application/problem+json"


def problem(status: int, detail: str, *, title: str | None = None, **extra: Any) -> dict[str, Any]:
    """The problem object for ``status``: type ``about:blank``, the status's own phrase as title
    unless ``title`` is given, ``detail`` for people, and any ``extra`` members after those."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    body.update(extra)
    return body


def problem_bytes(status: int, detail: str, **extra: Any) -> bytes:
    """``problem(status, detail, **extra)`` as compact JSON: a ``CONTENT_TYPE`` body."""
    return json.dumps(problem(status, detail, **extra), separators=(",", ":")).encode()
