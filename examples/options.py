"""The command line both example apps share."""

from __future__ import annotations

import argparse


def parse(framework: str, port: int) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=f"sessionstore example: {framework}")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=port)
    parser.add_argument("--redis-url", help="redis://, rediss:// or redis+cluster:// URL")
    parser.add_argument("--prefix", default="example", help="key prefix in Redis")
    return parser.parse_args()
