"""One backend, start to finish: the suites in an order that keeps each measure honest.

Device parsing needs no Redis and memory wants a small database (its deltas would otherwise
include the main dictionary doubling), so they go first; the adversarial listing writes and
deletes tenants of its own, before the data of the other measures, and so does scale (one
tenant grown to a million sessions, deleted before the next measure). Then the probes are
written and the tenant filled to the smallest total; the hot path, create, the peers and the
Redis CPU per operation are measured there, and the listings at every total while the tenant
grows.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from . import device_bound
from .bench import Backend, Bench
from .plan import Plan
from .progress import Progress
from .suites import (
    adversarial,
    cluster,
    create,
    device,
    memory,
    near_cache,
    peers,
    redis_cpu,
    scale,
    validate,
)
from .suites.scaling import Scaling
from .targets import evaluate

SECTIONS = (
    "device",
    "memory",
    "adversarial",
    "validate",
    "create",
    "peers",
    "redis_cpu",
    "scaling",
    "near_cache",
    "scale",
    "device_bound",
    "cluster",
)


def run_backend(
    backend: Backend, plan: Plan, progress: Progress, sections: frozenset[str]
) -> dict[str, Any]:
    with Bench(backend, plan, progress) as bench:
        progress.phase(f"{backend.name}: {_where(backend)}, keys under {bench.prefix}:*")
        results: dict[str, Any] = {"server": _where(backend), "totals": list(bench.plan.totals)}
        if "device" in sections and backend.real:  # the same code on every backend: once
            progress.phase("device parse")
            results["device"] = device.run(bench)
        if "memory" in sections and backend.real:
            progress.phase(f"memory, {bench.plan.memory_sessions:,} sessions")
            results["memory"] = memory.run(bench)
        if "adversarial" in sections and backend.real:
            progress.phase(
                f"adversarial listing: one user logs in {bench.plan.adversary_logins:,} times"
            )
            results["adversarial"] = adversarial.run(bench)
        if "near_cache" in sections and backend.real:
            progress.phase("near cache: hits, revocation visibility, mixed load")
            results["near_cache"] = near_cache.run(bench)
        if "scale" in sections and backend.real:
            largest = max(bench.plan.scale_memory_totals + bench.plan.scale_validate_totals)
            progress.phase(f"scale: one tenant grown to {largest:,} sessions")
            results["scale"] = scale.run(bench)
        if "device_bound" in sections and backend.real:
            progress.phase("device-bound sessions: validate bound and unbound, refresh")
            results["device_bound"] = device_bound.run(bench)
        if "cluster" in sections and backend.real:
            progress.phase(f"cluster: {backend.cluster_url or 'none answered, not measured'}")
            results["cluster"] = cluster.run(bench)
        if sections & {"validate", "create", "peers", "redis_cpu", "scaling"}:
            results.update(_with_data(bench, sections))
        results["targets"] = [target.to_dict() for target in evaluate(results)]
        return results


def _with_data(bench: Bench, sections: frozenset[str]) -> dict[str, Any]:
    progress, totals = bench.progress, bench.plan.totals
    results: dict[str, Any] = {}
    scaling = Scaling(bench)
    progress.phase("writing the probe sessions")
    scaling.seed()
    current = scaling.grow_to(totals[0])
    if "validate" in sections:
        progress.phase(f"validate (hot path) @ {current:,} sessions")
        results["validate"] = validate.run(bench)
    if "create" in sections:
        progress.phase("create")
        results["create"] = create.run(bench)
    if "peers" in sections and bench.backend.real:
        progress.phase("peers: load a session by id")
        results["peers"] = peers.run(bench)
    if "redis_cpu" in sections and bench.backend.real:
        progress.phase("Redis CPU per operation (INFO commandstats)")
        results["redis_cpu"] = redis_cpu.run(bench)
    if "scaling" in sections:
        results["scaling"] = []
        for total in totals:
            current = scaling.grow_to(total)
            progress.phase(f"listing and revoking @ {current:,} sessions")
            results["scaling"].append(scaling.measure(current))
    return results


def _where(backend: Backend) -> str:
    """The server without credentials: host and port only."""
    if backend.url is None:
        return "fakeredis, in process"
    parts = urlsplit(backend.url)
    return f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}{parts.path}"
