"""Cluster-only tests. Those on the shared cluster (SESSIONSTORE_TEST_CLUSTER_URL) reuse the
root fixtures with the backend fixed to ``cluster``; those that disturb a cluster (failover,
resharding) start one of their own with tests/cluster/local.py.
"""

from __future__ import annotations

import pytest


@pytest.fixture
def backend() -> str:
    return "cluster"
