"""What the figures were measured on: CPU, memory, Python, Redis and the client libraries."""

from __future__ import annotations

import os
import platform
import socket
from importlib import metadata
from typing import Any

import redis.utils

PACKAGES = (
    "sessionstore",
    "redis",
    "hiredis",
    "fakeredis",
    "user-agents",
    "ua-parser",
    "msgpack",
    "Flask-Session",
    "django-redis",
    "Django",
    "starsessions",
)


def describe(client: Any | None) -> dict[str, Any]:
    """The machine, and the Redis server behind ``client`` (None: no real server)."""
    return {
        "host": socket.gethostname(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": round(_memory_bytes() / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "hiredis_parser": bool(redis.utils.HIREDIS_AVAILABLE),
        "packages": {name: _version(name) for name in PACKAGES},
        "redis_server": _server(client) if client is not None else None,
    }


def _server(client: Any) -> dict[str, Any]:
    info = client.info("server")
    settings = client.config_get("hash-max-listpack-*") or client.config_get("hash-max-ziplist-*")
    return {
        "version": info.get("redis_version"),
        "mode": info.get("redis_mode"),
        "hash_max_listpack": {name: value for name, value in settings.items()},
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 0


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None
