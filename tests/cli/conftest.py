"""The command line's fixtures: a real Redis (or cluster) URL whose prefix is cleaned up."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import backends
from tests.api.helpers import REAL_BACKENDS


@pytest.fixture(params=REAL_BACKENDS)
def redis_url(request: pytest.FixtureRequest, prefix: str) -> Iterator[str]:
    """The backend's URL; what the test wrote under ``prefix`` is deleted afterwards."""
    client = backends.sync_client(request.param)
    url = backends.url_for(request.param)
    assert url is not None
    yield url
    backends.delete_prefix(client, prefix)
    client.close()
