"""Token buckets for the admin API, kept in process memory.

Why memory and not Redis: the failed-authentication throttle has to run before, and instead
of, any Redis command (a malformed key must cost Redis nothing, and a flood of junk keys must
not reach it at all); a Redis counter would add a round trip to every admin call and would stop
protecting anything exactly when Redis is slow or down. The cost: limits hold per server
process, so N processes admit N times the rate; `sessionstore serve` runs one.
"""

from __future__ import annotations

import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import InvalidArgument

_RATE = re.compile(r"([1-9][0-9]{0,8})/([0-9]{1,6}(?:\.[0-9]{1,3})?)s?")


@dataclass(frozen=True, slots=True)
class Rate:
    """``requests`` per ``seconds``: a bucket of ``requests`` tokens refilled over ``seconds``."""

    requests: int
    seconds: float

    def __post_init__(self) -> None:
        if self.requests < 1 or self.seconds <= 0:
            raise InvalidArgument("a rate needs at least one request per positive period")

    @classmethod
    def parse(cls, text: str) -> Rate:
        """``"1000/10"`` or ``"1000/10s"``: 1000 requests per 10 seconds."""
        match = _RATE.fullmatch(text.strip())
        if match is None:
            raise InvalidArgument(f"rate must look like 1000/10s, not {text[:32]!r}")
        return cls(int(match[1]), float(match[2]))

    def __str__(self) -> str:
        return f"{self.requests}/{self.seconds:g}s"


@dataclass(frozen=True, slots=True)
class RateLimits:
    """The admin API's limits. The defaults sit far above what an operator or a test suite does."""

    per_key: Rate = field(default_factory=lambda: Rate(1000, 10))
    per_tenant: Rate = field(default_factory=lambda: Rate(2000, 10))
    # Failed authentications from one client address; valid keys are never counted.
    failed_auth_per_ip: Rate = field(default_factory=lambda: Rate(30, 60))


class Limiter:
    """One token bucket per name (an API key id, a tenant, a client address)."""

    def __init__(
        self,
        rate: Rate,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_names: int = 100_000,
    ) -> None:
        self.rate = rate
        self._clock = clock
        self._max_names = max_names
        # name -> (tokens left, when counted); least recently used first.
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def acquire(self, name: str) -> float:
        """Take a token: 0.0 if one was free, else the seconds until one will be."""
        now = self._clock()
        capacity = self.rate.requests
        per_second = capacity / self.rate.seconds
        tokens, then = self._buckets.pop(name, (capacity, now))
        tokens = min(capacity, tokens + (now - then) * per_second)
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = (1 - tokens) / per_second
        self._buckets[name] = (tokens, now)
        # Forgetting the longest-idle bucket is close to harmless: an idle bucket has refilled.
        if len(self._buckets) > self._max_names:
            self._buckets.popitem(last=False)
        return wait


def retry_after(wait: float) -> str:
    """A ``Retry-After`` value: whole seconds, at least one."""
    return str(max(1, math.ceil(wait)))
