"""The command line every example app shares, and where its store comes from.

A store is chosen explicitly: ``--redis-url`` (or ``SESSIONSTORE_REDIS_URL``), or
``--embedded`` (or ``SESSIONSTORE_EMBEDDED=1``) for the in-process store of a one-process demo.
With neither, the example says so in one line and exits 2; a flag wins over the environment.
"""

from __future__ import annotations

import argparse
import logging
import os

log = logging.getLogger("sessionstore.examples")

NO_STORE = (
    "no session store: give --redis-url URL (or SESSIONSTORE_REDIS_URL), "
    "or --embedded (SESSIONSTORE_EMBEDDED=1) for a one-process demo"
)
EMBEDDED_WARNING = (
    "serving on the embedded store: its sessions live in this one process, are lost when it "
    "stops and are not seen by any other process or worker; use --redis-url beyond a demo"
)


def parse(framework: str, port: int) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=f"sessionstore example: {framework}")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=port)
    store = parser.add_mutually_exclusive_group()
    store.add_argument(
        "--redis-url", help="redis://, rediss:// or redis+cluster:// URL (SESSIONSTORE_REDIS_URL)"
    )
    store.add_argument(
        "--embedded",
        action="store_true",
        help="the in-process store, for a one-process demo only (SESSIONSTORE_EMBEDDED=1)",
    )
    parser.add_argument("--prefix", default="example", help="key prefix in Redis")
    args = parser.parse_args()
    if args.redis_url is None and not args.embedded:
        url = os.environ.get("SESSIONSTORE_REDIS_URL") or None
        embedded = os.environ.get("SESSIONSTORE_EMBEDDED") == "1"
        if url and embedded:
            parser.exit(
                2,
                f"{parser.prog}: set SESSIONSTORE_REDIS_URL or SESSIONSTORE_EMBEDDED=1, not both\n",
            )
        args.redis_url, args.embedded = url, embedded
    if args.redis_url is None and not args.embedded:
        parser.exit(2, f"{parser.prog}: {NO_STORE}\n")
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
    return args


def store_url(args: argparse.Namespace) -> str | None:
    """The URL to open the store on; None (the embedded store) only when asked for, with the
    warning that goes with serving HTTP from it."""
    if args.embedded:
        log.warning(EMBEDDED_WARNING)
        return None
    return str(args.redis_url)
