"""Token buckets for the admin API, kept in process memory.

Why memory and not Redis: the failed-authentication throttle has to run before, and instead
of, any Redis command (a malformed key must cost Redis nothing, and a flood of junk keys must
not reach it at all); a Redis counter would add a round trip to every admin call and would stop
protecting anything exactly when Redis is slow or down. The cost: limits hold per server
process, so N processes admit N times the rate; `sessionstore serve` runs one.

An app has one per-key ``Limiter``, shared by the API's gate and the console (create_app):
a key's API calls, console sign-ins and console clicks all spend the same bucket.

A call takes as many tokens as its route's ``Cost`` says (app.ROUTE_COSTS: a page more than a
single read), ``InFlight`` caps how many calls of one tenant the server works on at once (and
how many of them heavy), and heavy calls of a tenant are paced (``heavy_per_tenant``).
"""

from __future__ import annotations

import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

from .._core import inputs
from ..errors import InvalidArgument

__all__ = ["Cost", "HEAVY", "InFlight", "Limiter", "Rate", "RateLimits", "retry_after"]

_RATE = re.compile(r"([1-9][0-9]{0,8})/([0-9]{1,6}(?:\.[0-9]{1,3})?)s?")
_LIMIT = re.compile(r"[1-9][0-9]{0,3}")  # a limit as the endpoints take it: canonical decimal


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
    # Calls of one tenant (all its keys) the server works on at once, and how many of those
    # may be heavy (costing HEAVY tokens or more); more are refused (429).
    in_flight_per_tenant: int = 4
    heavy_in_flight_per_tenant: int = 1
    # Heavy calls of one tenant, on top of their tokens: a burst of a few, so that a tenant's
    # heavy calls come spread out instead of back to back (the server's CPU is shared).
    heavy_per_tenant: Rate = field(default_factory=lambda: Rate(5, 1))

    def __post_init__(self) -> None:
        if not 1 <= self.heavy_in_flight_per_tenant <= self.in_flight_per_tenant:
            raise InvalidArgument(
                "a tenant needs a call in flight, and at least one of them may be heavy"
            )


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

    def acquire(self, name: str, cost: int = 1) -> float:
        """Take ``cost`` tokens: 0.0 if they were there, else the seconds until they will be
        (and none is taken). A cost over the bucket's size takes the whole bucket, so that
        every call can get through."""
        now = self._clock()
        capacity = self.rate.requests
        per_second = capacity / self.rate.seconds
        cost = min(cost, capacity)
        tokens, then = self._buckets.pop(name, (capacity, now))
        tokens = min(capacity, tokens + (now - then) * per_second)
        wait = 0.0
        if tokens >= cost:
            tokens -= cost
        else:
            wait = (cost - tokens) / per_second
        self._buckets[name] = (tokens, now)
        # Forgetting the longest-idle bucket is close to harmless: an idle bucket has refilled.
        if len(self._buckets) > self._max_names:
            self._buckets.popitem(last=False)
        return wait


@dataclass(frozen=True, slots=True)
class Cost:
    """What one call of a route costs in tokens, from its query alone (before any work).

    By default one token. A page (``per_items``) costs a token per ``per_items`` items of its
    ``limit`` (rounded up; the default limit when absent, one token when the limit is not one
    the endpoint takes, since it is then refused before Redis is asked). A page given any of
    ``filters`` costs ``filtered`` tokens whatever its limit: a filter may make it read its
    whole budget of entries before it finds one match.
    """

    per_items: int | None = None
    filtered: int = 1
    filters: frozenset[str] = frozenset()

    def tokens(self, query: Mapping[str, str]) -> int:
        """What one request costs: one token; more for a large page, or a filtered read, where
        the cost counts those."""
        tokens = 1
        if self.per_items is not None:
            text = query.get("limit", str(inputs.DEFAULT_LIMIT))
            if _LIMIT.fullmatch(text) and int(text) <= inputs.MAX_LIMIT:
                tokens = -(-int(text) // self.per_items)
        if not self.filters.isdisjoint(query):
            tokens = max(tokens, self.filtered)
        return tokens


HEAVY: Final = 5  # tokens: a page of 500 or more, a filtered events page, a bulk revocation


class InFlight:
    """How many calls each name (a tenant) has in flight, up to ``cap``, of which up to
    ``heavy_cap`` heavy ones.

    Why heavy calls have their own, smaller cap: the server's event loop runs every call's
    work between its Redis round trips, first come first served, so another tenant's call
    waits, at each of its own round trips, behind one step of each heavy call in flight.
    One heavy call at a time per tenant keeps that wait to one step.

    Counted in process memory like the buckets, and forgotten at zero, so it holds one entry
    per tenant with a call in progress and nothing else.
    """

    def __init__(self, cap: int, heavy_cap: int | None = None) -> None:
        self.cap = cap
        self.heavy_cap = cap if heavy_cap is None else heavy_cap
        self._counts: dict[str, tuple[int, int]] = {}  # name -> (calls, heavy calls)

    def __len__(self) -> int:
        return len(self._counts)

    def full(self, name: str, *, heavy: bool = False) -> bool:
        """Whether ``name`` has as many calls in flight as it may (heavy ones counted apart)."""
        calls, heavy_calls = self._counts.get(name, (0, 0))
        return calls >= self.cap or (heavy and heavy_calls >= self.heavy_cap)

    def enter(self, name: str, *, heavy: bool = False) -> bool:
        """Take a place if one is free."""
        if self.full(name, heavy=heavy):
            return False
        calls, heavy_calls = self._counts.get(name, (0, 0))
        self._counts[name] = (calls + 1, heavy_calls + heavy)
        return True

    def leave(self, name: str, *, heavy: bool = False) -> None:
        """One call of ``name`` is done (the pair of ``enter``)."""
        calls, heavy_calls = self._counts.pop(name, (1, int(heavy)))
        if calls > 1:
            self._counts[name] = (calls - 1, heavy_calls - heavy)


def retry_after(wait: float) -> str:
    """A ``Retry-After`` value: whole seconds, at least one."""
    return str(max(1, math.ceil(wait)))
