"""The console's pages, each module a few pages and the routes they answer (``ROUTES``).

signin     sign in with a tenant's API key, sign out
sessions   the tenant's sessions, filtered, paged both ways; revoke one
session    one session: its fields, its events; the confirmation before revoking it
users      one user's sessions; revoke them all
revoke_ip  every session from one IP address: the count, then revoke them
events     the timeline of session events, newest first, by user, IP address and type
errors     every refusal and failure, as a page in words
"""

from __future__ import annotations

__all__: list[str] = []
