"""FastAPI dependencies over ``sessionstore.middleware.asgi.SessionMiddleware``.

    app = FastAPI()
    app.add_middleware(SessionMiddleware, store=AsyncSessionStore.from_url(url), tenant="acme")

    @app.get("/me")
    async def me(session: Annotated[Session, Depends(require_session)]) -> dict[str, Any]:
        return session.to_dict()

``require_session`` gives the request's live session, or ends the request with the
middleware's 401 problem+json (``WWW-Authenticate: Bearer``); ``optional_session`` gives it or
None. Both read what the middleware already validated: no Redis call of their own. (Imported
only by apps that use it: ``import sessionstore`` never loads FastAPI.)
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from ..model import Session
from . import asgi
from .policy import GATE

__all__ = ["CurrentSession", "OptionalSession", "optional_session", "require_session"]


async def require_session(connection: HTTPConnection) -> Session:
    """The request's session; a request without one gets the middleware's 401."""
    return asgi.required_session(connection)


async def optional_session(connection: HTTPConnection) -> Session | None:
    """The request's session, or None when anonymous."""
    if GATE not in connection.scope:
        raise RuntimeError("optional_session needs sessionstore.middleware.asgi.SessionMiddleware")
    return asgi.current_session(connection)


CurrentSession = Annotated[Session, Depends(require_session)]
OptionalSession = Annotated[Session | None, Depends(optional_session)]
