"""What callers may pass: one rule for each kind of input."""

from __future__ import annotations

import pytest

from sessionstore._core import inputs
from sessionstore.errors import InvalidIPAddress, InvalidTenant, InvalidUserId


@pytest.mark.parametrize("good", ["acme-corp", "a", "0", "a" * 63, "x-1"])
def test_tenant_slugs(good: str) -> None:
    assert inputs.tenant(good) == good


@pytest.mark.parametrize("bad", ["", "-a", "A", "a*", "a:b", "{a}", "a b", "a" * 64, "é", None])
def test_bad_tenant_slugs(bad: object) -> None:
    with pytest.raises(InvalidTenant):
        inputs.tenant(bad)


@pytest.mark.parametrize("text", ["01", "+1", "1e3", "-1", " 1", "1.0", "", str(2**63), "١"])
def test_user_ids_from_urls_are_canonical_decimals(text: str) -> None:
    with pytest.raises(InvalidUserId):
        inputs.user_id_text(text)


def test_user_id_bounds() -> None:
    assert inputs.user_id_text("0") == 0
    assert inputs.user_id_text(str(2**63 - 1)) == 2**63 - 1
    for bad in (-1, 2**63, True, 1.0, "1"):
        with pytest.raises(InvalidUserId):
            inputs.user_id(bad)


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("203.0.113.45", "203.0.113.45"),
        ("::ffff:203.0.113.45", "203.0.113.45"),
        ("2001:DB8:0:0::1", "2001:db8::1"),
    ],
)
def test_ip_addresses_are_normalised(given: str, stored: str) -> None:
    assert inputs.ip_address(given) == stored


@pytest.mark.parametrize("bad", ["", "010.1.1.1", "1.2.3.4/32", "fe80::1%eth0", "x", "1.2.3", None])
def test_bad_ip_addresses(bad: object) -> None:
    with pytest.raises(InvalidIPAddress):
        inputs.ip_address(bad)


def test_user_agents_are_bounded() -> None:
    assert len(inputs.user_agent("é" * 2000).encode()) <= inputs.MAX_USER_AGENT_BYTES


def test_the_tenant_check_remembers_a_bounded_number_of_short_strings() -> None:
    # A hostile caller's tenants: huge ones are refused before the check's memory, and no
    # number of distinct ones grows it past its bound.
    remembered = inputs._valid_tenant
    remembered.cache_clear()
    with pytest.raises(InvalidTenant):
        inputs.tenant("a" * 1_000_000)
    assert remembered.cache_info().currsize == 0
    for number in range(remembered.cache_info().maxsize + 500):
        inputs.tenant(f"tenant-{number}")
    assert remembered.cache_info().currsize == remembered.cache_info().maxsize == 1024
    assert inputs.tenant("tenant-1") == "tenant-1"  # forgotten or not, the verdict is the same
    with pytest.raises(InvalidTenant):
        inputs.tenant("Tenant-1")  # a refusal is remembered as a refusal
    with pytest.raises(InvalidTenant):
        inputs.tenant("Tenant-1")
