"""The HTML of the example apps, framework-free: a login form, a home page, a devices page."""

from __future__ import annotations

from html import escape
from typing import Any

STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; max-width: 46rem; margin: 3rem auto; }
table { border-collapse: collapse; width: 100%; } td, th { padding: .4rem; text-align: left; }
tr + tr { border-top: 1px solid #ddd; } form { display: inline; }
"""


def page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
        f"<style>{STYLE}</style></head><body><h1>{escape(title)}</h1>{body}</body></html>"
    )


def login_page(message: str | None = None) -> str:
    # A user id is all it takes here: a real app checks a password first, then calls login().
    # ``message``: a flash message kept in the framework's own cookie session.
    note = "" if message is None else f"<p class='flash'>{escape(message)}</p>"
    return page(
        "Sign in",
        f"{note}<form method='post' action='/login'>"
        "<label>User id <input name='user_id' type='number' min='0' value='456' required></label> "
        "<button>Sign in</button></form>",
    )


def home_page(user_id: int) -> str:
    return page(
        "Signed in",
        f"<p>Hello, user {user_id}.</p>"
        "<p><a href='/devices'>My devices</a></p>"
        "<form method='post' action='/logout'><button>Sign out</button></form>",
    )


def devices_page(sessions: list[dict[str, Any]]) -> str:
    rows = "".join(_device_row(session) for session in sessions)
    return page(
        "My devices",
        "<table><tr><th>Device</th><th>IP address</th><th>Last active</th><th></th></tr>"
        f"{rows}</table><p>"
        "<form method='post' action='/devices/others/revoke'>"
        "<button>Sign out all other devices</button></form> "
        "<a href='/'>Back</a></p>",
    )


def _device_row(session: dict[str, Any]) -> str:
    device = session["device"]
    what = f"{device['browser']} on {device['os']} ({device['type']})"
    if session["current"]:
        action = "<strong>this device</strong>"
    else:
        action = (
            f"<form method='post' action='/devices/{escape(session['id'])}/revoke'>"
            "<button>Sign out</button></form>"
        )
    return (
        f"<tr data-session-id='{escape(session['id'])}' "
        f"data-current='{str(session['current']).lower()}'>"
        f"<td>{escape(what)}</td><td>{escape(session['ipAddress'])}</td>"
        f"<td>{escape(session['lastActiveAt'])}</td><td>{action}</td></tr>"
    )
