"""The data the benchmarks write: realistic user agents, IP addresses and users.

Sessions are spread as a login service sees them: a few sessions per user, a few hundred per
IP address, and user agents of about 120 bytes that repeat (most users run a handful of
browsers), except where a measure wants every agent new.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import count

TENANT = "bench"
SESSIONS_PER_USER = 4
SESSIONS_PER_IP = 200
# Background users are numbered from here; the probes of the measures use smaller ids.
BACKGROUND_USER_BASE = 1_000_000

# Real browsers' agents; every one names a {major} and a {build} number, so each number
# gives a distinct string.
_TEMPLATES = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{major}.0.{build}.105 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.{major} "
    "(KHTML, like Gecko) Version/17.{build} Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.{major} "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E{build} Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{major}.0.{build}.104 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:{major}.0) Gecko/20100101 "
    "Firefox/{major}.0.{build}",
    "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.{major} "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E{build} Safari/604.1",
)


def user_agent(number: int) -> str:
    """The ``number``-th distinct user agent: a real browser's shape, versions from ``number``."""
    template = _TEMPLATES[number % len(_TEMPLATES)]
    rest = number // len(_TEMPLATES)
    return template.format(major=100 + rest % 40, build=4000 + rest // 40)


COMMON_USER_AGENTS = tuple(user_agent(number) for number in range(48))
# Numbers past the common agents: each call of fresh_user_agent() is new to this process, so
# neither the store's cache nor the parser's own can hold it.
_fresh_numbers = count(10_000)


def fresh_user_agent() -> str:
    return user_agent(next(_fresh_numbers))


_FIRST_ADDRESS = int(ipaddress.IPv4Address("100.64.0.0"))


def ip_address(number: int) -> str:
    return str(ipaddress.IPv4Address(_FIRST_ADDRESS + number))


@dataclass(frozen=True, slots=True)
class NewSession:
    """The arguments of one ``store.create``."""

    tenant: str
    user_id: int
    ip_address: str
    user_agent: str
    auth_method: str = "password"
    mfa_verified: bool = False


def background(start: int, stop: int, tenant: str = TENANT) -> Iterator[NewSession]:
    """Sessions ``start..stop`` of the background data: 4 per user, 200 per IP address."""
    for number in range(start, stop):
        yield NewSession(
            tenant,
            BACKGROUND_USER_BASE + number // SESSIONS_PER_USER,
            ip_address(number // SESSIONS_PER_IP),
            COMMON_USER_AGENTS[number % len(COMMON_USER_AGENTS)],
            auth_method=("password", "social", "sso")[number % 3],
            mfa_verified=number % 5 == 0,
        )


def of_user(
    user_id: int, count: int, *, tenant: str = TENANT, ip: str | None = None
) -> Iterator[NewSession]:
    """``count`` sessions of one user, from one address or spread over a few."""
    for number in range(count):
        yield NewSession(
            tenant,
            user_id,
            ip or ip_address(number % 8),
            COMMON_USER_AGENTS[number % len(COMMON_USER_AGENTS)],
        )


def at_address(address: str, count: int, first_user: int) -> Iterator[NewSession]:
    """``count`` sessions from one IP address, of several users."""
    for number in range(count):
        yield NewSession(
            TENANT,
            first_user + number // SESSIONS_PER_USER,
            address,
            COMMON_USER_AGENTS[number % len(COMMON_USER_AGENTS)],
        )


# -- the memory mix of the issue --------------------------------------------------------------

MIX_SESSIONS_PER_USER = (2, 3, 4)  # drawn evenly: about 3 per user
MIX_SHARED_IPS = 100  # offices, carrier NATs: shared by every user
MIX_SHARED_SHARE = 0.3  # of sessions come from a shared address, the rest from the user's own
MIX_AGENT_BYTES = 120
# Browsers' agents of exactly 120 bytes; each names a {major} and a {build} number.
_MIX_TEMPLATES = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{major}.0.{build}.110 Safari/537.36",
    "Mozilla/5.0 (Windows NT 6.3; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{major}.0.0.0 Safari/537.36 Edg/{major}.0",
    "Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{major}.0.{build}.9 Mobile Safari/537.36",
)
MIX_USER_AGENTS = tuple(
    template.format(major=100 + number % 40, build=4000 + number)
    for number in range(16)
    for template in _MIX_TEMPLATES
)
assert all(len(agent.encode()) == MIX_AGENT_BYTES for agent in MIX_USER_AGENTS)
# Addresses of the mix: the shared ones first, then one of the user's own per user.
_MIX_OWN_IP_BASE = 1_000_000


def memory_mix(count: int, tenant: str, *, seed: int = 2026) -> Iterator[NewSession]:
    """``count`` sessions as the issue describes a tenant: about 3 per user, 70% from the
    user's own address and 30% from 100 shared ones, browsers' agents of 120 bytes."""
    draw = random.Random(seed)
    user = made = 0
    while made < count:
        own_ip = ip_address(_MIX_OWN_IP_BASE + user)
        browser = draw.randrange(len(MIX_USER_AGENTS))
        for _ in range(min(draw.choice(MIX_SESSIONS_PER_USER), count - made)):
            shared = draw.random() < MIX_SHARED_SHARE
            address = ip_address(draw.randrange(MIX_SHARED_IPS)) if shared else own_ip
            # Most logins from the user's usual browser, some from a second device.
            agent = browser if draw.random() < 0.8 else draw.randrange(len(MIX_USER_AGENTS))
            yield NewSession(
                tenant,
                BACKGROUND_USER_BASE + user,
                address,
                MIX_USER_AGENTS[agent],
                auth_method=("password", "social", "sso")[made % 3],
                mfa_verified=made % 5 == 0,
            )
            made += 1
        user += 1
