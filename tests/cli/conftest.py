"""Scheduling of the CLI's tests (fixtures are the root conftest's)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import grouping


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each file here runs on one worker, as ``--dist loadfile`` ran them (tests/grouping.py)."""
    grouping.by_file(items, Path(__file__).parent)
