"""Scheduling of the store's tests (fixtures are the root conftest's)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import grouping

# Files of many slow tests, each test on its own: any worker runs any of them (see
# tests/grouping.py); every other file here runs on one worker.
SPREAD = ("test_events.py", "test_state_machine.py", "test_store.py")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    grouping.by_file(items, Path(__file__).parent, spread=SPREAD)
