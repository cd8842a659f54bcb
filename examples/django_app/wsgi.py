"""The WSGI application: Django inside sessionstore's SessionMiddleware."""

from __future__ import annotations

import os
from wsgiref.types import WSGIApplication

from django.core.wsgi import get_wsgi_application

from sessionstore import SessionStore
from sessionstore.middleware.wsgi import SessionMiddleware

TENANT = "acme-corp"


def create_application(store: SessionStore, *, secure_cookie: bool = True) -> WSGIApplication:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_app.settings")
    return SessionMiddleware(
        get_wsgi_application(),
        store=store,
        tenant=TENANT,
        exclude_paths=["/healthz", "/login"],
        secure_cookie=secure_cookie,
    )
