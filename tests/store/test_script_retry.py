"""When the drivers call a script again (both run _connection.ScriptRetry): after NOSCRIPT,
and while its slot moves, a bounded number of times; never after any other refusal.

The drivers' own behaviour under a real SCRIPT FLUSH and a real reshard is in
tests/cluster/test_noscript.py and tests/cluster/test_reshard.py."""

from __future__ import annotations

import pytest
from redis.exceptions import NoScriptError, ResponseError

from sessionstore import _connection

MOVING = ResponseError("Script attempted to access a non local key in a cluster node")


def test_noscript_asks_for_the_source_and_a_moving_slot_for_a_pause() -> None:
    retry = _connection.ScriptRetry()
    assert retry.after(NoScriptError("NOSCRIPT No matching script")) is None
    assert retry.after(MOVING) == _connection.SLOT_MOVE_PAUSES[1]


def test_any_other_refusal_is_raised_at_once() -> None:
    refusal = ResponseError("OOM command not allowed when used memory > 'maxmemory'")
    with pytest.raises(ResponseError, match="OOM"):
        _connection.ScriptRetry().after(refusal)


def test_the_tries_are_bounded() -> None:
    retry = _connection.ScriptRetry()
    pauses = [retry.after(MOVING) for _ in _connection.SLOT_MOVE_PAUSES]
    assert pauses == list(_connection.SLOT_MOVE_PAUSES)
    with pytest.raises(ResponseError, match="non local key"):
        retry.after(MOVING)
