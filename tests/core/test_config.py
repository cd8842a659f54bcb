"""StoreConfig refuses, when it is made, every setting the store could not honour."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from sessionstore import InvalidArgument, StoreConfig


@pytest.mark.parametrize(
    "setting",
    [
        {"prefix": ""},
        {"prefix": "ss\n"},  # a trailing newline would pass a $-anchored match
        {"prefix": "a{b}"},  # braces would move the hash tag
        {"prefix": "x" * 33},
        {"lifetime": timedelta(0)},
        {"idle_timeout": timedelta(seconds=-1)},
        {"touch_interval": timedelta(seconds=-1)},
        {"max_sessions_per_user": 0},
        {"tenant_buckets": 0},
        {"tenant_buckets": 1025},
        {"revoke_replicas": 17},
        {"revoke_replica_timeout": timedelta(0)},
        {"revoke_replica_timeout": timedelta(seconds=11)},
        {"busy_poll": timedelta(microseconds=-1)},
        {"busy_poll": timedelta(milliseconds=1, microseconds=1)},
    ],
)
def test_bad_settings_are_refused(setting: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgument):
        StoreConfig(**setting)


def test_the_defaults_are_valid_and_documented_values() -> None:
    config = StoreConfig()
    assert (config.prefix, config.tenant_buckets, config.max_sessions_per_user) == ("ss", 128, 100)
    assert config.lifetime_ms == 24 * 3600 * 1000 and config.idle_timeout_ms == 0
