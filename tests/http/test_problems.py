"""sessionstore.http.problems: the one shape of every HTTP error (RFC 9457)."""

from __future__ import annotations

import json

from sessionstore.http.problems import CONTENT_TYPE, problem, problem_bytes


def test_a_problem_has_the_rfc_members_and_the_status_phrase_as_title() -> None:
    assert problem(404, "No such session.") == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": "No such session.",
    }
    assert problem(429, "Slow down.", title="Too many", retryAfter=3)["title"] == "Too many"
    assert problem(429, "Slow down.", retryAfter=3)["retryAfter"] == 3


def test_problem_bytes_are_compact_json_of_the_same_object() -> None:
    body = problem_bytes(503, "The session store is unavailable.")
    assert b'": ' not in body and b'", "' not in body  # no spaces between members
    assert json.loads(body) == problem(503, "The session store is unavailable.")
    assert CONTENT_TYPE == "application/problem+json"
