"""Locations from a real MaxMind DB file that the test builds itself."""

from __future__ import annotations

from pathlib import Path

import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from sessionstore import Location, MaxMindResolver, SessionStore, StoreConfig
from sessionstore.geo import no_location


@pytest.fixture(scope="module")
def city_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    writer = MMDBWriter(
        ip_version=6, ipv4_compatible=True, database_type="GeoIP2-City", languages=["en"]
    )
    new_york = {"city": {"names": {"en": "New York"}}, "country": {"iso_code": "US"}}
    writer.insert_network(IPSet(["203.0.113.0/24"]), new_york)
    writer.insert_network(IPSet(["198.51.100.0/24"]), {"country": {"iso_code": "DE"}})
    writer.insert_network(IPSet(["2001:db8::/32"]), {"city": {"names": {"en": "Berlin"}}})
    path = tmp_path_factory.mktemp("geo") / "city.mmdb"
    writer.to_db_file(str(path))
    return path


def test_city_and_country(city_db: Path) -> None:
    resolve = MaxMindResolver(city_db)
    assert resolve("203.0.113.45") == Location("New York", "US")
    assert resolve("198.51.100.1") == Location(None, "DE")
    assert resolve("2001:db8::1") == Location("Berlin", None)


def test_unknown_addresses_have_no_location(city_db: Path) -> None:
    resolve = MaxMindResolver(city_db)
    assert resolve("192.0.2.1") is None
    assert resolve("not an ip") is None
    assert no_location("203.0.113.45") is None


def test_the_store_records_the_location(city_db: Path, client: object, prefix: str) -> None:
    store = SessionStore(
        client, config=StoreConfig(prefix=prefix), location_resolver=MaxMindResolver(city_db)
    )
    located, token = store.create("acme-corp", 1, ip_address="203.0.113.9", user_agent="curl/8")
    unknown, _ = store.create("acme-corp", 1, ip_address="192.0.2.1", user_agent="curl/8")
    assert store.validate("acme-corp", token).to_dict()["location"] == {
        "city": "New York",
        "country": "US",
    }
    assert store.get("acme-corp", unknown.id).to_dict()["location"] is None
    assert located.location == Location("New York", "US")
