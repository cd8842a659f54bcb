"""A webhook receiver on a loopback port: real HTTP, scripted answers, every request kept.

It speaks just enough HTTP/1.1 for the deliverer (one request per connection) and checks each
signature with ``verify`` below, written the way a receiver would (the README's example).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field


def verify(secret: str, headers: dict[str, str], body: bytes, tolerance: int = 300) -> bool:
    """Standard Webhooks: HMAC-SHA256 of "{id}.{timestamp}.{body}", base64, after "v1,"."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    msg_id, timestamp = headers["webhook-id"], headers["webhook-timestamp"]
    if abs(time.time() - int(timestamp)) > tolerance:
        return False
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(
        hmac.compare_digest(expected, signature.removeprefix("v1,"))
        for signature in headers["webhook-signature"].split()
        if signature.startswith("v1,")
    )


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    number: int  # 0, 1, ... in arrival order
    verified: bool | None = None

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering
    hold: asyncio.Event | None = None  # answer only once this is set
    hang: bool = False  # never answer: wait until the deliverer gives up and hangs up


Script = Callable[[Request], Awaitable[Answer]]


async def accept(request: Request) -> Answer:
    return Answer()


class Receiver:
    """``await receiver.start()`` gives its base URL; ``script`` decides each answer."""

    def __init__(self, script: Script = accept) -> None:
        self.script = script
        self.secrets: dict[str, str] = {}  # path -> the endpoint's secret
        self.requests: list[Request] = []
        self.accepted: list[Request] = []  # answered 2xx, counted when the answer is decided
        self.in_flight: dict[str, int] = {}
        self.most_in_flight: dict[str, int] = {}
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self.port = 0
        self.url = ""

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        return self.url

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    def delivered(self, path: str) -> list[str]:
        """The webhook-ids answered 2xx on ``path``, in the order they were accepted."""
        return [request.webhook_id for request in self.accepted if request.path == path]

    def attempts(self, path: str) -> list[Request]:
        return [request for request in self.requests if request.path == path]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        path = None
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            method, path, _ = head[0].split(" ", 2)
            headers = {}
            for line in head[1:]:
                if line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            request = Request(method, path, headers, body, len(self.requests))
            secret = self.secrets.get(path)
            if secret is not None and "webhook-id" in headers:
                request.verified = verify(secret, headers, body)
            self.requests.append(request)
            self.in_flight[path] = self.in_flight.get(path, 0) + 1
            self.most_in_flight[path] = max(self.most_in_flight.get(path, 0), self.in_flight[path])
            answer = await self.script(request)
            if answer.hang:
                await asyncio.wait_for(reader.read(), 60)  # until the deliverer hangs up
                return
            if 200 <= answer.status < 300:
                # Taken in as soon as decided: a deliverer that dies before the answer reaches
                # it has still delivered the event, and will deliver it again.
                self.accepted.append(request)
            if answer.delay:
                await asyncio.sleep(answer.delay)
            if answer.hold is not None:
                await answer.hold.wait()
            extra = "".join(f"{name}: {value}\r\n" for name, value in answer.headers.items())
            writer.write(
                f"HTTP/1.1 {answer.status} Whatever\r\nContent-Length: 0\r\n"
                f"Connection: close\r\n{extra}\r\n".encode()
            )
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except TimeoutError:
            pass
        finally:
            if path is not None and path in self.in_flight:
                self.in_flight[path] -= 1
            writer.close()
            self._handlers.discard(task)
