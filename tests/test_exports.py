from __future__ import annotations

import pytest

import sessionstore


def test_all_is_sorted_and_complete() -> None:
    assert sessionstore.__all__ == sorted(sessionstore.__all__)
    assert set(sessionstore._WHERE) == set(sessionstore.__all__)
    for name in sessionstore.__all__:
        assert getattr(sessionstore, name).__name__ == name


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="NoSuchThing"):
        sessionstore.NoSuchThing  # noqa: B018


def test_what_public_methods_return_or_raise_is_exported() -> None:
    for name in ("Event", "EventPage", "InvalidActor", "NearCacheStats", "OperationIncomplete"):
        assert name in sessionstore.__all__, name
