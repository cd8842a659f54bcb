"""``python -m benchmarks``: measure, then write results/<date>-<host>.{json,md,png}.

Only a full run of every section rewrites RESULTS.md; a quick run writes ``-quick`` files.
"""

from __future__ import annotations

import argparse
import re
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from sessionstore import _connection

from . import chart, machine, report
from .bench import Backend
from .plan import FULL, QUICK, Plan
from .progress import Progress
from .runner import SECTIONS, run_backend

HERE = Path(__file__).resolve().parent
DEFAULT_URL = "redis://127.0.0.1:6379/0"
DEFAULT_CLUSTER_URL = "redis+cluster://127.0.0.1:7000"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description="Benchmarks of sessionstore beside their floors."
    )
    parser.add_argument("--redis-url", default=DEFAULT_URL, help=f"default {DEFAULT_URL}")
    parser.add_argument(
        "--embedded", action="store_true", help="also run on the embedded in-process store"
    )
    parser.add_argument(
        "--quick", action="store_true", help="smaller data and shorter runs (under 2 minutes)"
    )
    parser.add_argument(
        "--only",
        type=_sections,
        default=frozenset(SECTIONS),
        metavar="SECTIONS",
        help=f"comma-separated subset of: {', '.join(SECTIONS)} (never updates RESULTS.md)",
    )
    parser.add_argument(
        "--cluster-url",
        default=DEFAULT_CLUSTER_URL,
        help=f"a Redis Cluster for the cluster section, default {DEFAULT_CLUSTER_URL} "
        "(scripts/cluster.sh start 7000); not measured when none answers",
    )
    parser.add_argument("--results-dir", type=Path, default=HERE / "results")
    return parser.parse_args(argv)


def _sections(text: str) -> frozenset[str]:
    chosen = frozenset(part.strip() for part in text.split(",") if part.strip())
    unknown = chosen - set(SECTIONS)
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(SECTIONS)}")
    return chosen


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    command = " ".join(["python -m benchmarks", *argv])
    plan = QUICK if args.quick else FULL
    # SIGTERM unwinds like Ctrl-C, so the benches delete their keys on the way out.
    signal.signal(signal.SIGTERM, _interrupt)
    progress = Progress()
    try:
        server = _reachable(args.redis_url)
    except redis.RedisError as error:
        print(f"Redis at {args.redis_url} does not answer: {error}", file=sys.stderr)
        return 2
    try:
        run = _measure(args, command, plan, progress, server)
    except KeyboardInterrupt:
        print("\ninterrupted: nothing written; the run's keys were deleted", file=sys.stderr)
        return 130
    written = _write(run, args, plan, complete=args.only == frozenset(SECTIONS))
    _summarise(run, written)
    return 0


def _measure(
    args: argparse.Namespace, command: str, plan: Plan, progress: Progress, server: Any
) -> dict[str, Any]:
    started = time.monotonic()
    cluster_url = _cluster(args.cluster_url) if "cluster" in args.only else None
    backends = [Backend("redis", args.redis_url, cluster_url)]
    if args.embedded:
        backends.append(Backend("embedded", None))
    run: dict[str, Any] = {
        "schema": 1,
        "mode": plan.name,
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        "sections": sorted(args.only),
        "machine": machine.describe(server),
        "backends": {},
    }
    server.close()
    for backend in backends:
        run["backends"][backend.name] = run_backend(backend, plan, progress, args.only)
    run["duration_s"] = round(time.monotonic() - started, 1)
    return run


def _write(run: dict[str, Any], args: argparse.Namespace, plan: Plan, complete: bool) -> list[Path]:
    directory: Path = args.results_dir
    directory.mkdir(parents=True, exist_ok=True)
    host = re.sub(r"[^A-Za-z0-9_.-]", "-", run["machine"]["host"])
    stem = f"{run['date']}-{host}" + ("" if plan.full else f"-{plan.name}")
    written = [directory / f"{stem}.json"]
    report.write_json(run, written[0])
    png = None
    scaling = run["backends"]["redis"].get("scaling")
    if scaling:
        png = directory / f"{stem}.png"
        chart.draw(scaling, f"sessionstore on Redis, {plan.name} run of {run['date']}", png)
        written.append(png)
    written.append(directory / f"{stem}.md")
    written[-1].write_text(report.markdown(run, png and png.name), encoding="utf-8")
    if plan.full and complete:
        results_md = HERE / "RESULTS.md"
        results_md.write_text(report.markdown(run, _link_from_here(png)), encoding="utf-8")
        written.append(results_md)
    return written


def _link_from_here(path: Path | None) -> str | None:
    if path is None:
        return None
    return str(path.relative_to(HERE)) if path.is_relative_to(HERE) else str(path)


def _summarise(run: dict[str, Any], written: list[Path]) -> None:
    for name, results in run["backends"].items():
        targets = results.get("targets", [])
        met = sum(1 for target in targets if target["met"])
        print(f"{name}: {met} of {len(targets)} targets met")
        for target in targets:
            mark = "met " if target["met"] else "MISS"
            ratio = "" if target["ratio"] is None else f"{target['ratio']:.2f}x"
            print(
                f"  [{mark}] {target['name']}: {target['measured']} "
                f"vs {target['floor']} ({ratio}, goal {target['goal']})"
            )
    for path in written:
        print(f"wrote {path}")


def _reachable(url: str) -> Any:
    client = _connection.sync_client(url)
    client.ping()
    return client


def _cluster(url: str) -> str | None:
    """``url`` when a Redis Cluster answers there, else None (the section is not measured)."""
    try:
        client = _connection.sync_client(url)  # a cluster client connects as it is made
    except (redis.RedisError, redis.exceptions.RedisClusterException, ValueError):
        return None
    try:
        client.ping()
    except redis.RedisError:
        return None
    finally:
        client.close()
    return url if _connection.is_cluster(client) else None


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
