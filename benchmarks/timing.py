"""Timing loops and their statistics.

Every figure comes from several *runs* of the same loop. Throughput is the median of the runs'
operations per second; latency percentiles are taken over the calls of all runs together, so
p50 is the median call of the repeated runs and p99 its tail. Each run's own median is kept
too: their spread is the noise of the measure. Sequential and threaded measures also give the
process's CPU time per call (user and system, every thread's), the median of the runs': what
a faster figure cost.
"""

from __future__ import annotations

import asyncio
import math
import statistics
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Stats:
    p50_ms: float
    p99_ms: float
    ops_per_s: float
    calls: int
    runs: int
    run_p50_ms: tuple[float, ...] = ()
    cpu_us: float | None = None  # the process's CPU per call, median of the runs'

    @property
    def noise(self) -> float:
        """How far apart the runs' medians are: largest over smallest (1.0: identical)."""
        if not self.run_p50_ms or min(self.run_p50_ms) <= 0:
            return 1.0
        return max(self.run_p50_ms) / min(self.run_p50_ms)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def brief(self) -> str:
        cpu = "" if self.cpu_us is None else f"   cpu {self.cpu_us:6.1f} µs"
        return (
            f"{self.ops_per_s:>9,.0f} ops/s   p50 {self.p50_ms:8.3f} ms   p99 {self.p99_ms:8.3f} ms"
            + cpu
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Stats:
        return cls(**{**data, "run_p50_ms": tuple(data.get("run_p50_ms", ()))})


def summarise(
    runs: list[list[float]], run_seconds: list[float], run_cpu: list[float] | None = None
) -> Stats:
    """Stats of runs of per-call latencies (seconds); ``run_seconds`` is each run's duration,
    ``run_cpu`` the process CPU seconds each took."""
    pooled = sorted(latency for run in runs for latency in run)
    cpu = None
    if run_cpu is not None:
        per_call = (spent / max(len(run), 1) for run, spent in zip(runs, run_cpu, strict=True))
        cpu = statistics.median(per_call) * 1e6
    return Stats(
        p50_ms=statistics.median(pooled) * 1000,
        p99_ms=percentile(pooled, 99) * 1000,
        ops_per_s=statistics.median(
            len(run) / seconds for run, seconds in zip(runs, run_seconds, strict=True)
        ),
        calls=len(pooled),
        runs=len(runs),
        run_p50_ms=tuple(statistics.median(run) * 1000 for run in runs),
        cpu_us=cpu,
    )


def percentile(ordered: list[float], rank: float) -> float:
    """Nearest-rank percentile of an ascending list (with few calls, p99 is the slowest)."""
    return ordered[max(0, math.ceil(rank / 100 * len(ordered)) - 1)]


@dataclass(frozen=True, slots=True)
class Effort:
    """How long to measure: ``runs`` runs of at least ``min_calls`` calls and ``seconds``."""

    runs: int
    seconds: float
    min_calls: int = 1
    max_calls: int = 1_000_000


Prepare = Callable[[], Callable[[], object]]


def measure(call: Callable[[], object], effort: Effort, *, warm_up: bool = True) -> Stats:
    """Time ``call`` in a loop."""
    return compare({"call": call}, effort, warm_up=warm_up)["call"]


def measure_prepared(prepare: Prepare, effort: Effort, *, warm_up: bool = True) -> Stats:
    """Time the calls that ``prepare`` returns, one each; preparing is not timed.

    Throughput counts only the timed calls, so untimed preparation does not dilute it.
    """
    return compare_prepared({"call": prepare}, effort, warm_up=warm_up)["call"]


def compare(
    calls: dict[str, Callable[[], object]], effort: Effort, *, warm_up: bool = True
) -> dict[str, Stats]:
    """Time several calls with their runs interleaved, so a busy moment hits all alike."""
    return compare_prepared(
        {name: (lambda call=call: call) for name, call in calls.items()},
        effort,
        warm_up=warm_up,
        cpu=True,
    )


def compare_prepared(
    prepares: dict[str, Prepare], effort: Effort, *, warm_up: bool = True, cpu: bool = False
) -> dict[str, Stats]:
    """As ``compare``, each call made by its ``prepare``. CPU per call only with ``cpu``: a
    run's CPU time holds its untimed preparation too, so only a trivial one may be counted."""
    if warm_up:
        for prepare in prepares.values():
            prepare()()  # connections, script cache, parser caches
    runs: dict[str, list[list[float]]] = {name: [] for name in prepares}
    spent: dict[str, list[float]] = {name: [] for name in prepares}
    for _ in range(effort.runs):
        for name, prepare in prepares.items():
            started = time.process_time()
            runs[name].append(_run(prepare, effort))
            spent[name].append(time.process_time() - started)
    # Sequential calls: throughput over the time spent in them, untimed preparation apart.
    return {
        name: summarise(done, [sum(run) for run in done], spent[name] if cpu else None)
        for name, done in runs.items()
    }


def _run(prepare: Prepare, effort: Effort) -> list[float]:
    latencies: list[float] = []
    started = time.perf_counter()
    while _more(latencies, effort, time.perf_counter() - started):
        timed = prepare()
        begin = time.perf_counter()
        timed()
        latencies.append(time.perf_counter() - begin)
    return latencies


def compare_threaded(
    calls: dict[str, Callable[[], object]], effort: Effort, *, threads: int
) -> dict[str, Stats]:
    """Time each call from ``threads`` threads at once, runs interleaved as in ``compare``.

    Throughput is calls per wall-clock second of a run; the threads contend for the GIL and
    the cores as a threaded web server's do.
    """
    for call in calls.values():
        call()
    runs: dict[str, list[list[float]]] = {name: [] for name in calls}
    walls: dict[str, list[float]] = {name: [] for name in calls}
    cpu: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(effort.runs):
        for name, call in calls.items():
            started, spent = time.perf_counter(), time.process_time()
            runs[name].append(_threaded_run(call, effort.seconds, threads))
            walls[name].append(time.perf_counter() - started)
            cpu[name].append(time.process_time() - spent)
    return {name: summarise(runs[name], walls[name], cpu[name]) for name in calls}


def _threaded_run(call: Callable[[], object], seconds: float, threads: int) -> list[float]:
    latencies: list[float] = []  # list.append is atomic: the threads share it
    deadline = time.perf_counter() + seconds

    def worker() -> None:
        while time.perf_counter() < deadline:
            begin = time.perf_counter()
            call()
            latencies.append(time.perf_counter() - begin)

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    return latencies


async def compare_concurrent(
    calls: dict[str, Callable[[], Awaitable[object]]], effort: Effort, *, tasks: int
) -> dict[str, Stats]:
    """Time each call from ``tasks`` concurrent tasks, runs interleaved as in ``compare``.

    Throughput is calls per wall-clock second of a run.
    """
    for call in calls.values():
        await call()
    runs: dict[str, list[list[float]]] = {name: [] for name in calls}
    walls: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(effort.runs):
        for name, call in calls.items():
            started = time.perf_counter()
            runs[name].append(await _concurrent_run(call, effort.seconds, tasks))
            walls[name].append(time.perf_counter() - started)
    return {name: summarise(runs[name], walls[name]) for name in calls}


async def _concurrent_run(
    call: Callable[[], Awaitable[object]], seconds: float, tasks: int
) -> list[float]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            begin = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - begin)

    await asyncio.gather(*(worker() for _ in range(tasks)))
    return latencies


def _more(latencies: list[float], effort: Effort, elapsed: float) -> bool:
    if len(latencies) < effort.min_calls:
        return True
    return elapsed < effort.seconds and len(latencies) < effort.max_calls
