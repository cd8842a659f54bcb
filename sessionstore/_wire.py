"""Redis's protocol as the store's own connections speak it, once redis-py has opened them.

redis-py's send and read cost about 20 µs a call here beyond the socket's own work (its
timeouts, its checks, and for redis.asyncio a packer in Python); the store's batches skip them:
commands packed by hiredis, replies read by a hiredis reader configured as redis-py configures
its own, so an error reply comes back as the same redis-py exception.
"""

from __future__ import annotations

from typing import Any

import hiredis
import redis.exceptions
from redis._parsers.base import BaseParser

CLOSED = "Connection closed by server."
READ_SIZE = 16384  # bytes a connection of the store reads at a time


def pack(commands: list[tuple[Any, ...]]) -> list[bytes]:
    """Each command as RESP; a value redis-py's encoder refuses (a None, say) is DataError."""
    try:
        return [hiredis.pack_command(command) for command in commands]
    except TypeError as error:
        raise redis.exceptions.DataError(str(error)) from None


def reader() -> hiredis.Reader:
    """A new connection's reader: error replies become values (NoScriptError, ...), not raises."""
    return hiredis.Reader(
        protocolError=redis.exceptions.InvalidResponse, replyError=BaseParser.parse_error
    )
