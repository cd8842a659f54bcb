"""Device parsing: the store's cached and uncached parse beside user_agents.parse alone.

A cached parse is far below the timer's resolution, so one timed sample parses every common
agent once and the figure is divided by their number.
"""

from __future__ import annotations

from typing import Any

from user_agents import parse

from sessionstore._core.device import parse_device, parse_device_uncached

from ..bench import Bench
from ..timing import Stats, compare
from ..workload import COMMON_USER_AGENTS, fresh_user_agent


def run(bench: Bench) -> dict[str, Any]:
    effort = bench.plan.steady

    def cached_batch() -> None:
        for agent in COMMON_USER_AGENTS:
            parse_device(agent)

    measured = compare(
        {
            "cached": cached_batch,
            "uncached": lambda: parse_device_uncached(fresh_user_agent()),
            "user_agents_parse": lambda: parse(fresh_user_agent()),
        },
        effort,
    )
    measured["cached"] = _per_agent(measured["cached"], len(COMMON_USER_AGENTS))
    results = {}
    for name, stats in measured.items():
        results[name] = stats.to_dict()
        bench.progress.result(
            f"device parse: {name}",
            f"p50 {stats.p50_ms * 1000:10.2f} µs   p99 {stats.p99_ms * 1000:10.2f} µs",
        )
    return results


def _per_agent(batch: Stats, agents: int) -> Stats:
    return Stats(
        p50_ms=batch.p50_ms / agents,
        p99_ms=batch.p99_ms / agents,
        ops_per_s=batch.ops_per_s * agents,
        calls=batch.calls * agents,
        runs=batch.runs,
        run_p50_ms=tuple(p50 / agents for p50 in batch.run_p50_ms),
    )
