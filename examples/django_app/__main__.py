"""A small Django project signed in through sessionstore's WSGI middleware.

    python examples/django_app --redis-url redis://127.0.0.1:6379/0 [--port 8003]
    python examples/django_app --embedded          # one-process demo, in-process store

Django's own server (what ``runserver`` runs, without the reloader) serves wsgi.py's
``application``: Django's WSGI handler inside sessionstore's SessionMiddleware.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# examples/ on the path: this project is the package django_app, beside options and pages.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_app.settings")

import options
from django.core.servers.basehttp import run

from sessionstore import SessionStore, StoreConfig


def main() -> None:
    args = options.parse("Django", port=8003)
    store = SessionStore.from_url(options.store_url(args), config=StoreConfig(prefix=args.prefix))

    from django_app.wsgi import create_application

    # Plain http on loopback, where clients drop Secure cookies. Behind TLS, keep the default.
    application = create_application(store, secure_cookie=False)
    print(f"Django example on http://{args.host}:{args.port}/", flush=True)
    run(args.host, args.port, application, threading=True)


if __name__ == "__main__":
    main()
