"""The issue's targets, as ratios of figures measured in the same run. Reported, never asserted.

"The same within noise" is read as: the median at the largest total is at most
``FLAT_TOLERANCE`` times the median at the smallest one, on the same probe, or within the
measure's own noise when that is larger: the ratio of its slowest run's median to its fastest,
at either total (a busy machine moves whole runs).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .suites.create import CAP
from .suites.peers import MODES, OURS, OURS_POLLING
from .timing import Stats

FLAT_TOLERANCE = 1.25
VALIDATE_SHARE_OF_FLOOR = 0.8
# Validate at least this much faster than each peer's load by id (ops/s), sync and async.
PEER_FACTOR = 1.1
# revoke_all of a user's 10,000 sessions at the largest total: p50 under this.
REVOKE_10K_BUDGET_MS = 100.0
# create for a user at the cap (each create evicts one) over create for a user with none (p50).
CREATE_AT_CAP_FACTOR = 1.5
# Redis CPU of validate in steady state (INFO commandstats usec) over HGETALL of the same hash.
REDIS_CPU_VALIDATE_FACTOR = 2.0
# The mix (10,000 sessions, about 3 per user, 70% from the user's own IP address and
# 30% from 100 shared ones, 120-byte user agents) on Redis's default config: at most this many
# bytes per session, every index included (used_memory delta).
MEMORY_BUDGET_BYTES = 700
# The first admin page of a tenant an adversary shaped, over a clean tenant's (medians).
ADVERSARIAL_PAGE_FACTOR = 2.0
CACHED_PARSE_BUDGET_US = 5.0
# The near cache: a hot session validated from memory over Flask-Session's load by id (ops/s),
# and the p99 of how long another process still accepts a revoked token.
NEAR_CACHE_FACTOR = 10.0
NEAR_CACHE_VISIBILITY_MS = 5.0
# A near-cache hit over PyJWT's jwt.decode of an HS256 token with the Session's claims (ops/s).
NEAR_CACHE_JWT_FACTOR = 10.0


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    measured: str
    floor: str
    ratio: float | None
    goal: str
    met: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate(results: dict[str, Any]) -> list[Target]:
    """Targets of one backend's results (a section that was not run yields nothing)."""
    targets: list[Target] = []
    if "validate" in results:
        targets += _validate(results["validate"])
    if results.get("redis_cpu"):
        targets += _redis_cpu(results["redis_cpu"])
    if results.get("peers"):
        targets += _peers(results["peers"])
    if "create" in results:
        targets += _create_at_cap(results["create"])
    if results.get("scaling"):
        targets += _flat(results["scaling"])
        targets += _revoke_budget(results["scaling"])
    if results.get("memory"):
        targets.append(_memory(results["memory"]))
    if results.get("adversarial"):
        targets += _adversarial(results["adversarial"])
    if results.get("device"):
        targets.append(_device(results["device"]))
    if results.get("near_cache"):
        targets += _near_cache(results["near_cache"])
    if results.get("scale"):
        targets += _scale(results["scale"])
    if results.get("cluster"):
        targets += _cluster(results["cluster"])
    return targets


def _cluster(cluster: dict[str, Any]) -> list[Target]:
    """No change crosses the cluster bus to other shards; near caches hear of it in time."""
    classic = cluster["bus"]["per_login_touch_revoke"]["publish"]
    p99 = cluster["visibility"]["p99 ms"]
    return [
        Target(
            "cluster: classic PUBLISH messages on the bus per login+touch+revoke",
            f"{classic:.2f}",
            "0 (sharded: the shard only)",
            None,
            "== 0",
            classic == 0,
        ),
        Target(
            "near cache: revocation visible on the cluster, p99",
            f"{p99:.2f} ms",
            f"{NEAR_CACHE_VISIBILITY_MS:g} ms budget",
            p99 / NEAR_CACHE_VISIBILITY_MS,
            "<= 1x",
            p99 <= NEAR_CACHE_VISIBILITY_MS,
        ),
    ]


def _scale(scale: dict[str, Any]) -> list[Target]:
    """The memory budget of the issue's mix at every size the tenant grew to; the near cache
    against a JWT."""
    targets = [
        Target(
            f"memory per session, issue's mix, one tenant grown to {point['sessions']:,}",
            f"{point['memory']['bytes_per_session']:,.0f} B",
            f"budget {MEMORY_BUDGET_BYTES} B",
            point["memory"]["bytes_per_session"] / MEMORY_BUDGET_BYTES,
            "<= 1.0x",
            point["memory"]["bytes_per_session"] <= MEMORY_BUDGET_BYTES,
        )
        for point in scale["sizes"]
        if "memory" in point
    ]
    near = scale["near_cache_vs_jwt"]
    ours, theirs = near["near_cache_hit"]["ops_per_s"], near["jwt_decode"]["ops_per_s"]
    targets.append(
        Target(
            "near cache hit vs PyJWT jwt.decode (HS256, the Session's claims)",
            f"{ours:,.0f} ops/s",
            f"{theirs:,.0f} ops/s",
            near["ratio"],
            f">= {NEAR_CACHE_JWT_FACTOR:g}x",
            near["ratio"] >= NEAR_CACHE_JWT_FACTOR,
        )
    )
    return targets


def _near_cache(near: dict[str, Any]) -> list[Target]:
    hits, seen = near["hits"], near["visibility"]
    ours, flask = hits["near cache validate ops/s"], hits["Flask-Session load ops/s"]
    p99 = seen["p99 ms"]
    return [
        Target(
            "near cache: hot validate vs Flask-Session load by id",
            f"{ours:,.0f} ops/s",
            f"{flask:,.0f} ops/s",
            ours / flask,
            f">= {NEAR_CACHE_FACTOR:g}x",
            ours / flask >= NEAR_CACHE_FACTOR,
        ),
        Target(
            "near cache: revocation visible in another process, p99",
            f"{p99:.2f} ms",
            f"{NEAR_CACHE_VISIBILITY_MS:g} ms budget",
            p99 / NEAR_CACHE_VISIBILITY_MS,
            "<= 1x",
            p99 <= NEAR_CACHE_VISIBILITY_MS,
        ),
    ]


def _validate(validate: dict[str, Any]) -> list[Target]:
    targets = []
    for mode, label in (("sync", "sync, 1 connection"), ("async", "async, 64 tasks")):
        store = validate[mode]["store"]["ops_per_s"]
        floor = validate[mode]["raw_evalsha"]["ops_per_s"]
        ratio = store / floor
        targets.append(
            Target(
                f"validate {label} vs raw EVALSHA",
                f"{store:,.0f} ops/s",
                f"{floor:,.0f} ops/s",
                ratio,
                f">= {VALIDATE_SHARE_OF_FLOOR}x",
                ratio >= VALIDATE_SHARE_OF_FLOOR,
            )
        )
    return targets


def _redis_cpu(redis_cpu: dict[str, Any]) -> list[Target]:
    steady = redis_cpu["measures"].get("validate_steady")
    if steady is None or steady["ratio"] is None:
        return []
    store, floor = steady["store"], steady["floor"]
    clean = "" if store["clean_windows"] and floor["clean_windows"] else " (other clients)"
    return [
        Target(
            "Redis CPU of validate, steady state, vs HGETALL of the same hash",
            f"{store['usec_per_op']:.2f} µs per call{clean}",
            f"{floor['usec_per_op']:.2f} µs",
            steady["ratio"],
            f"<= {REDIS_CPU_VALIDATE_FACTOR}x",
            steady["ratio"] <= REDIS_CPU_VALIDATE_FACTOR,
        )
    ]


def _create_at_cap(create: dict[str, Any]) -> list[Target]:
    at_cap, new_user = create.get(f"user_at_cap_{CAP}"), create.get(f"new_user_cap_{CAP}")
    if at_cap is None or new_user is None:
        return []
    ratio = at_cap["p50_ms"] / new_user["p50_ms"]
    return [
        Target(
            f"create for a user at the cap of {CAP} vs for a user with no sessions",
            f"{at_cap['p50_ms']:.3f} ms",
            f"{new_user['p50_ms']:.3f} ms",
            ratio,
            f"<= {CREATE_AT_CAP_FACTOR}x",
            ratio <= CREATE_AT_CAP_FACTOR,
        )
    ]


def _peers(peers: dict[str, Any]) -> list[Target]:
    targets = []
    for mode in MODES:
        loads = peers.get(mode)
        if not loads:
            continue
        # The default store, and (sync) the one that polls for its reply, each on its own row.
        for label, measure in ((mode, OURS), (f"{mode}, busy_poll 50 µs", OURS_POLLING)):
            if measure not in loads:
                continue
            ours = loads[measure]["load_by_id"]["ops_per_s"]
            for name, peer in loads.items():
                if name.startswith("sessionstore"):
                    continue
                theirs = peer["load_by_id"]["ops_per_s"]
                targets.append(_peer_target(label, name, ours, theirs))
    return targets


def _peer_target(label: str, name: str, ours: float, theirs: float) -> Target:
    return Target(
        f"validate ({label}) vs {name} load by id",
        f"{ours:,.0f} ops/s",
        f"{theirs:,.0f} ops/s",
        ours / theirs,
        f">= {PEER_FACTOR}x",
        ours >= PEER_FACTOR * theirs,
    )


def _flat(scaling: list[dict[str, Any]]) -> list[Target]:
    if len(scaling) < 2:
        return []
    small, large = scaling[0], scaling[-1]
    span = f"{large['total_sessions']:,} vs {small['total_sessions']:,} sessions"
    targets = []
    for section, label in (
        ("list_user_sessions", "list_user_sessions, {} per user"),
        ("admin", "admin list {}"),
        ("revoke_all", "revoke_all, {} per user"),
    ):
        for probe, pair in small[section].items():
            name = f"{label.format(probe.replace('_', ' '))}: flat ({span})"
            targets.append(_flat_target(name, pair["store"], large[section][probe]["store"]))
    return targets


def _flat_target(name: str, small: dict[str, Any], large: dict[str, Any]) -> Target:
    before, after = Stats.from_dict(small), Stats.from_dict(large)
    ratio = after.p50_ms / before.p50_ms
    noise = max(before.noise, after.noise)
    tolerance = max(FLAT_TOLERANCE, noise)
    goal = f"<= {FLAT_TOLERANCE}x" if tolerance == FLAT_TOLERANCE else f"<= {noise:.2f}x (noise)"
    return Target(
        name, f"{after.p50_ms:.3f} ms", f"{before.p50_ms:.3f} ms", ratio, goal, ratio <= tolerance
    )


def _revoke_budget(scaling: list[dict[str, Any]]) -> list[Target]:
    largest = scaling[-1]
    revoke = largest["revoke_all"].get("10000")
    if revoke is None:
        return []
    p50 = revoke["store"]["p50_ms"]
    return [
        Target(
            f"revoke_all of 10,000 sessions @ {largest['total_sessions']:,}",
            f"{p50:.1f} ms (p99 {revoke['store']['p99_ms']:.1f} ms)",
            f"budget {REVOKE_10K_BUDGET_MS:.0f} ms",
            p50 / REVOKE_10K_BUDGET_MS,
            "< 1.0x",
            p50 < REVOKE_10K_BUDGET_MS,
        )
    ]


def _memory(memory: dict[str, Any]) -> Target:
    store, blob = memory["store_bytes_per_session"], memory["blob_bytes_per_session"]
    return Target(
        f"memory per session, every index, issue's mix of {memory['sessions']:,} sessions",
        f"{store:,.0f} B (msgpack blob, no index: {blob:,.0f} B)",
        f"budget {MEMORY_BUDGET_BYTES} B",
        store / MEMORY_BUDGET_BYTES,
        "<= 1.0x",
        store <= MEMORY_BUDGET_BYTES,
    )


def _adversarial(adversarial: dict[str, Any]) -> list[Target]:
    states = adversarial["states"]
    clean = states["clean"]["page"]["p50_ms"]
    targets = []
    for state, measured in states.items():
        if state == "clean":
            continue
        p50 = measured["page"]["p50_ms"]
        ratio = p50 / clean
        targets.append(
            Target(
                f"admin first page after one user's {adversarial['logins']:,} logins "
                f"({state.replace('_', ' ')}) vs a clean tenant",
                f"{p50:.3f} ms ({measured['round_trips']} round trips)",
                f"{clean:.3f} ms ({states['clean']['round_trips']} round trips)",
                ratio,
                f"<= {ADVERSARIAL_PAGE_FACTOR}x",
                ratio <= ADVERSARIAL_PAGE_FACTOR,
            )
        )
    return targets


def _device(device: dict[str, Any]) -> Target:
    cached_us = device["cached"]["p50_ms"] * 1000
    return Target(
        "cached device parse",
        f"{cached_us:.2f} µs",
        f"budget {CACHED_PARSE_BUDGET_US:.0f} µs",
        cached_us / CACHED_PARSE_BUDGET_US,
        "< 1.0x",
        cached_us < CACHED_PARSE_BUDGET_US,
    )
