"""The Redis Cluster: what a change costs the cluster bus, and how soon near caches hear of it.

Runs when ``python -m benchmarks`` finds a cluster (``--cluster-url``, by default the local one
``scripts/cluster.sh`` starts on port 7000); otherwise the report says it was not measured.
The measures are ``benchmarks/cluster_broadcast.py``'s: logins that are touched then revoked,
with the cluster-bus messages of each kind counted on every node before and after (a classic
PUBLISH crosses to every other node; a sharded one stays in its shard), and the near cache's
revocation visibility on the cluster (``benchmarks/near_cache.py``, section 2).
"""

from __future__ import annotations

from typing import Any

from .. import cluster_broadcast
from ..bench import Bench


def run(bench: Bench) -> dict[str, Any]:
    url, plan, progress = bench.backend.cluster_url, bench.plan, bench.progress
    if url is None:
        return {}
    bus = cluster_broadcast.measure(url, plan.cluster_changes)
    for kind, per in bus["per_login_touch_revoke"].items():
        progress.result(f"cluster-bus {kind} messages per login+touch+revoke", f"{per:.2f}")
    seen = cluster_broadcast.visibility(url, plan.cluster_visibility_trials)
    progress.result(
        f"near cache: revocation visible on the cluster ({seen['seen']}/{seen['trials']})",
        f"p50 {seen['p50 ms']:.2f} ms, p99 {seen['p99 ms']:.2f} ms, max {seen['max ms']:.2f} ms",
    )
    return {"url": _where(url), "bus": bus, "visibility": seen}


def _where(url: str) -> str:
    return url.split("@")[-1]  # no credentials in the results
