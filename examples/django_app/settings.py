"""Django settings of the example: no database, no Django sessions; sessionstore signs users in.

Django's CsrfViewMiddleware is left out only to keep the forms short: sessionstore's helpers
check the origin of every sign-in and sign-out. Keep it on in an app with other forms (its
cookie is ``csrftoken``; sessionstore's is ``__Host-sessionstore``, no clash with ``sessionid``).
"""

from __future__ import annotations

import os
import secrets

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or secrets.token_hex(32)
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]
ROOT_URLCONF = "django_app.urls"
INSTALLED_APPS: list[str] = []
DATABASES: dict[str, dict[str, str]] = {}
# Refusals (403) and an unreachable store (503) answered as the middleware answers them.
MIDDLEWARE = ["django_app.middleware.SessionErrors"]
USE_TZ = True
