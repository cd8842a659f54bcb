"""What importing the middleware loads: never the admin API, and only the framework asked for."""

from __future__ import annotations

import subprocess
import sys

import pytest


def loaded_after(module: str) -> set[str]:
    """The top-level names of sessionstore's modules and of the frameworks a fresh interpreter
    has loaded once it imports ``module``."""
    probe = (
        f"import sys, {module}\n"
        "for name in sorted(sys.modules):\n"
        "    if name.startswith('sessionstore.') or name.split('.')[0] in "
        "('starlette', 'flask', 'fastapi', 'django'):\n"
        "        print(name)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    return set(done.stdout.split())


@pytest.mark.parametrize(
    ("module", "frameworks"),
    [
        ("sessionstore.middleware", set()),
        ("sessionstore.middleware.policy", set()),
        ("sessionstore.middleware.wsgi", set()),  # Flask only inside register_flask's handler
        ("sessionstore.middleware.asgi", {"starlette"}),
        ("sessionstore.middleware.fastapi", {"starlette", "fastapi"}),
    ],
)
def test_the_middleware_loads_no_admin_code_and_only_its_framework(
    module: str, frameworks: set[str]
) -> None:
    loaded = loaded_after(module)
    assert not {name for name in loaded if name.startswith("sessionstore.admin")}
    assert {name.split(".")[0] for name in loaded if not name.startswith("sessionstore")} <= (
        frameworks
    )
    assert frameworks <= {name.split(".")[0] for name in loaded}
