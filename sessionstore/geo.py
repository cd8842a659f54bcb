"""Where an IP address is: a pluggable resolver, and one that reads a MaxMind DB file."""

from __future__ import annotations

import os
from typing import Any, Protocol

from .model import Location

__all__ = ["LocationResolver", "MaxMindResolver", "no_location"]


class LocationResolver(Protocol):
    """Where an IP address is, as far as known; None when nothing is. Called once per created
    session, in the process that creates it, so it must be fast and never raise."""

    def __call__(self, ip_address: str) -> Location | None: ...


def no_location(ip_address: str) -> Location | None:
    """The default: no database configured, so every location is unknown."""
    return None


class MaxMindResolver:
    """Reads city and country from a GeoIP2/GeoLite2 City or Country ``.mmdb`` file."""

    def __init__(self, path: str | os.PathLike[str], language: str = "en") -> None:
        import maxminddb  # the geo extra; imported here so that only its users pay for it

        self._reader = maxminddb.open_database(os.fspath(path))
        self._language = language

    def __call__(self, ip_address: str) -> Location | None:
        try:
            record = self._reader.get(ip_address)
        except ValueError:
            return None
        if not isinstance(record, dict):
            return None
        city = _name(record.get("city"), self._language)
        country = _iso_code(record.get("country"))
        if city is None and country is None:
            return None
        return Location(city=city, country=country)

    def close(self) -> None:
        """Release the database file."""
        self._reader.close()


def _name(entry: Any, language: str) -> str | None:
    if isinstance(entry, dict) and isinstance(entry.get("names"), dict):
        name = entry["names"].get(language)
        return name if isinstance(name, str) else None
    return None


def _iso_code(entry: Any) -> str | None:
    if isinstance(entry, dict) and isinstance(entry.get("iso_code"), str):
        return str(entry["iso_code"])
    return None
