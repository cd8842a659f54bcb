"""The views: a home page for signed-in users, sign in, sign out. The session comes from the
WSGI middleware (``request.environ``); login and logout set and clear its cookie on whatever
response the view returns."""

from __future__ import annotations

import pages
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from sessionstore import InvalidArgument
from sessionstore._core import inputs
from sessionstore.middleware.wsgi import current_session, login, logout


def see_other(url: str) -> HttpResponse:
    return HttpResponse(status=303, headers={"Location": url})


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    session = current_session(request.environ)
    if session is None:
        return see_other("/login")
    return HttpResponse(pages.home_page(session.user_id))


@require_http_methods(["GET", "POST"])
def sign_in(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return HttpResponse(pages.login_page())
    try:
        user_id = inputs.user_id_text(request.POST.get("user_id", ""))
    except InvalidArgument:
        return HttpResponse(pages.login_page(), status=400)
    login(request.environ, user_id)  # after checking the password
    return see_other("/")


@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    logout(request.environ)
    return see_other("/login")


@require_GET
def health(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")
