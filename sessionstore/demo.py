"""The demo data of ``sessionstore serve --demo``: the spec's tenant, key and sessions.

Tenant ``acme-corp`` gets an API key (never expiring, which is why the demo runs on the
embedded store only) and four sessions from four devices: three of user 456, one of user 789,
so that the spec's examples (``GET /t/acme-corp/api/v1/admin/users/456/sessions``) answer as
they are written.
"""

from __future__ import annotations

from dataclasses import dataclass

from .admin.apikeys import ApiKeys
from .aio import AsyncSessionStore
from .model import Location

__all__ = ["SESSIONS", "TENANT", "USER", "Demo", "location", "seed"]

TENANT = "acme-corp"
USER = 456
# The demo's only known place; the other addresses have no location, as most would not.
_LOCATIONS = {"203.0.113.45": Location("New York", "US")}
_MAC_CHROME = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
)
_IPHONE_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1"
)
_WINDOWS_EDGE = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0"
)
_LINUX_FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"
# (user id, IP address, user agent, auth method, MFA verified)
SESSIONS = (
    (USER, "203.0.113.45", _MAC_CHROME, "password", True),
    (USER, "198.51.100.23", _IPHONE_SAFARI, "social", False),
    (USER, "192.0.2.77", _WINDOWS_EDGE, "sso", True),
    (789, "198.51.100.23", _LINUX_FIREFOX, "password", False),
)


@dataclass(frozen=True, slots=True)
class Demo:
    """What ``seed`` made: the tenant's API key and the ids of user 456's sessions."""

    key: str
    session_ids: tuple[str, ...]

    def instructions(self, base_url: str) -> str:
        """The lines ``serve --demo`` prints: the key (shown this once), the sessions, a curl
        command and the console, all at ``base_url`` (``http://127.0.0.1:8080``)."""
        return "\n".join(
            [
                f"Demo tenant {TENANT}; API key (shown once): {self.key}",
                f"Sessions of user {USER}: {', '.join(self.session_ids)}",
                f"Try: curl {base_url}/t/{TENANT}/api/v1/admin/users/{USER}/sessions "
                f'-H "Authorization: Bearer {self.key}"',
                f"Console: {base_url}/console/ (tenant {TENANT}, the key above)",
            ]
        )


def location(ip_address: str) -> Location | None:
    """The demo's location resolver: New York for one address, nothing for the others."""
    return _LOCATIONS.get(ip_address)


async def seed(store: AsyncSessionStore) -> Demo:
    """Mint the tenant's API key and create the sessions in ``store`` (with its config)."""
    _, key = await ApiKeys(store.client, store.config.prefix).create(TENANT)
    locating = AsyncSessionStore(store.client, config=store.config, location_resolver=location)
    ids = []
    for user_id, ip_address, user_agent, method, mfa in SESSIONS:
        session, _ = await locating.create(
            TENANT,
            user_id,
            ip_address=ip_address,
            user_agent=user_agent,
            auth_method=method,
            mfa_verified=mfa,
        )
        if user_id == USER:
            ids.append(session.id)
    return Demo(key, tuple(ids))
