"""Django answers a view's exception with a 500 page before any WSGI middleware sees it: this
answers sessionstore's own errors as its middleware would (403, 401, 503 problem+json)."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from sessionstore.middleware.wsgi import error_reply


class SessionErrors:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        reply = error_reply(request.environ, exception)
        if reply is None:
            return None  # not sessionstore's: Django's own handling
        return HttpResponse(reply.body, status=reply.status, headers=dict(reply.headers))
