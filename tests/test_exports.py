from __future__ import annotations

import sessionstore


def test_all_is_sorted_and_complete() -> None:
    assert sessionstore.__all__ == sorted(sessionstore.__all__)
    public = {name for name in vars(sessionstore) if not name.startswith("_") and name[0].isupper()}
    assert public <= set(sessionstore.__all__)
    for name in sessionstore.__all__:
        assert hasattr(sessionstore, name)


def test_what_public_methods_return_or_raise_is_exported() -> None:
    for name in ("Event", "EventPage", "InvalidActor", "NearCacheStats", "OperationIncomplete"):
        assert name in sessionstore.__all__, name
