"""Cluster-only tests. Those on the shared cluster (SESSIONSTORE_TEST_CLUSTER_URL) reuse the
root fixtures with the backend fixed to ``cluster``; those that disturb a cluster (failover,
resharding) start one of their own with tests/cluster/local.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import grouping


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each file here runs on one worker: a cluster of its own lives as long as its module."""
    grouping.by_file(items, Path(__file__).parent)


@pytest.fixture
def backend() -> str:
    return "cluster"
