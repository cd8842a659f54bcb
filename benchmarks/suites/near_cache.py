"""The near cache on this run's Redis: hits against Flask-Session, revocation visibility
across processes, and a Zipf mixed load (the measures of benchmarks/near_cache.py, which also
runs them on a cluster)."""

from __future__ import annotations

from typing import Any

from .. import near_cache as measures
from ..bench import Bench


def run(bench: Bench) -> dict[str, Any]:
    url = bench.backend.url
    if url is None:
        return {}  # another process must see the same Redis
    quick = bench.plan.name.startswith("quick")
    prefix = f"{bench.prefix}-nc"
    try:
        return {
            "hits": measures.hits(url, f"{prefix}-hits", ops=2_000 if quick else 20_000),
            "visibility": measures.visibility(url, f"{prefix}-vis", 20 if quick else 300),
            "mixed": measures.mixed(url, f"{prefix}-mix", requests=3_000 if quick else 50_000),
        }
    finally:
        for part in ("hits", "vis"):
            measures.cleanup(url, f"{prefix}-{part}")
