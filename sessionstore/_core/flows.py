"""What a flow is: a generator that yields batches of Redis calls and receives their replies.

The core (``operations.py``, ``listing.py``, ``events.py``) writes every operation as a flow,
as httpx's auth flows do; the sync and async stores only run them. A batch goes to Redis in
one round trip.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, TypeVar

from .keys import memo_beside
from .scripts import Script

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ScriptCall:
    script: Script
    keys: tuple[str, ...]
    args: tuple[Any, ...]

    def __post_init__(self) -> None:
        # A remembered script (scripts.py) takes one more key: this call's own memo, so that a
        # client's retry of this call gets its first answer, and another call gets its own.
        if self.script.remembered:
            object.__setattr__(self, "keys", (*self.keys, memo_beside(self.keys[0])))


@dataclass(frozen=True, slots=True)
class Command:
    args: tuple[Any, ...]
    # A best-effort command (a cross-slot index hint) that Redis refuses does not fail its
    # batch: the driver hands back the error as its reply.
    best_effort: bool = False
    # A command with no key (CONFIG GET): on a cluster it asks every primary, alone.
    keyless: bool = False


Call = ScriptCall | Command
Batch = list[Call]
Flow = Generator[Batch, list[Any], T]


def wire_args(call: Call) -> tuple[Any, ...]:
    """The call as one Redis command, as a pipeline sends it. EVALSHA goes as a plain command:
    redis-py's cluster pipeline refuses its evalsha() method, but routes the command by its
    keys like any other."""
    if isinstance(call, Command):
        return call.args
    return ("EVALSHA", call.script.sha, len(call.keys), *call.keys, *call.args)
