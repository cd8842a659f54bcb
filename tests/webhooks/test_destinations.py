"""The destination policy (destinations.py): URLs, canonical hosts, refused addresses. No
Redis, no network (Lookups are tested in test_resolver.py).
"""

from __future__ import annotations

import pytest

from sessionstore.errors import InvalidArgument
from sessionstore.webhooks.destinations import DestinationRefused, check_url, refusal


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("169.254.169.254", "link-local"),  # cloud metadata
        ("fe80::1", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("10.0.0.1", "private or reserved"),
        ("172.16.5.4", "private or reserved"),
        ("192.168.1.1", "private or reserved"),
        ("100.64.0.1", "private or reserved"),  # carrier-grade NAT
        ("0.0.0.0", "private or reserved"),
        ("fc00::1", "private or reserved"),
        ("::ffff:10.0.0.1", "private or reserved"),  # IPv4-mapped
        ("::ffff:127.0.0.1", "loopback"),
        ("224.0.0.1", "private or reserved"),
        ("8.8.8.8", None),
        ("2001:4860:4860::8888", None),
    ],
)
def test_destinations_refused_without_the_allowance(address: str, why: str | None) -> None:
    assert refusal(address) == why


@pytest.mark.parametrize(
    ("address", "why"),
    [
        # NAT64, the well-known prefix 64:ff9b::/96: the IPv4 address is the destination.
        ("64:ff9b::a9fe:a9fe", "link-local"),  # 169.254.169.254
        ("64:ff9b::7f00:1", "loopback"),
        ("64:ff9b::a00:5", "private or reserved"),
        ("64:ff9b::808:808", None),  # 8.8.8.8, through a NAT64 gateway
        # NAT64 local-use 64:ff9b:1::/48: the IPv4 address may sit at any of several places
        # (RFC 6052 prefix lengths), so it cannot be checked: refused outright.
        ("64:ff9b:1::a9fe:a9fe", "NAT64 local-use"),
        ("64:ff9b:1:a9fe:a9:fe00::", "NAT64 local-use"),
        ("64:ff9b:1::808:808", "NAT64 local-use"),
        # 6to4 2002::/16: bits 16-47.
        ("2002:a00:5::1", "private or reserved"),  # 10.0.0.5
        ("2002:a9fe:a9fe::1", "link-local"),
        ("2002:7f00:1::1", "loopback"),
        ("2002:808:808::1", None),
        # IPv4-compatible ::/96 (deprecated): never a public destination.
        ("::a9fe:a9fe", "link-local"),
        ("::7f00:1", "loopback"),
        ("::a00:5", "private or reserved"),
        ("::808:808", "private or reserved"),
        # IPv4-mapped and IPv4-translated.
        ("::ffff:169.254.169.254", "link-local"),
        ("::ffff:8.8.8.8", None),
        ("::ffff:0:a9fe:a9fe", "link-local"),
        # Teredo 2001::/32: server in bits 32-63, client XOR'd in the last 32 bits.
        ("2001:0:4136:e378::5601:5601", "link-local"),  # client 169.254.169.254
        ("2001:0:a00:5::f7f7:fbfb", "private or reserved"),  # server 10.0.0.5
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "private or reserved"),  # Teredo itself
        # Others.
        ("fec0::1", "private or reserved"),  # site-local (deprecated)
        ("fd00:ec2::254", "cloud metadata"),  # AWS's IPv6 instance metadata
        ("100.100.100.200", "cloud metadata"),  # Alibaba Cloud's metadata
        ("2606:2800:220:1::", None),
    ],
)
def test_ipv6_forms_of_ipv4_addresses_are_judged_by_the_ipv4_address(
    address: str, why: str | None
) -> None:
    assert refusal(address) == why


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/sessions",
        "http://hooks.example.com:8080/a/b?c=d&e=%20",
        "https://8.8.8.8/x",
        "https://example.com",
        "https://example.com?x=1",
    ],
)
def test_urls_registration_accepts(url: str) -> None:
    assert check_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/",
        "https://user:pw@example.com/",
        "https://example.com/#fragment",
        "https://[2001:db8::1]/",
        "https://example.com:0/",
        "https://example.com:65536/",
        "https://exa mple.com/",
        "https://example.com/ space",
        "//example.com/",
        "https://-example.com/",
        "https://example.com/" + "a" * 2048,
        "",
        None,
        42,
    ],
)
def test_urls_registration_refuses(url: object) -> None:
    with pytest.raises(InvalidArgument, match="url must be"):
        check_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://LOCALHOST:9/",
        "http://api.localhost/",
        "http://10.1.2.3/",
        "http://192.168.0.10/",
    ],
)
def test_literal_private_destinations_are_refused_at_registration(url: str) -> None:
    with pytest.raises(DestinationRefused, match="--allow-private-destinations"):
        check_url(url)
    assert check_url(url, allow_private=True) == url.lower()


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://2130706433/", "loopback"),  # one decimal number
        ("http://0x7f000001:8080/", "loopback"),  # one hexadecimal number
        ("http://017700000001/", "loopback"),  # one octal number
        ("http://0x7f.1/", "loopback"),
        ("http://127.1/", "loopback"),
        ("http://0177.0.0.1/", "loopback"),  # octal
        ("http://0177.0.0.01/x", "loopback"),
        ("http://10.1/", "private or reserved"),  # 10.0.0.1
        ("http://012.0.0.1/", "private or reserved"),  # octal 012 is 10
        ("http://0xc0.0xa8.1.1/", "private or reserved"),  # 192.168.1.1
        ("http://0/", "private or reserved"),  # 0.0.0.0
    ],
)
def test_legacy_spellings_of_private_addresses_are_refused_at_registration(
    url: str, why: str
) -> None:
    """What inet_aton (and so getaddrinfo) reads as an IPv4 address is judged as one."""
    with pytest.raises(DestinationRefused, match=why):
        check_url(url)


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("http://0177.0.0.1:8080/hook?x=1", "http://127.0.0.1:8080/hook?x=1"),
        ("http://2130706433/", "http://127.0.0.1/"),
        ("http://0x7f.1", "http://127.0.0.1"),
        ("https://Hooks.Example.COM/Path", "https://hooks.example.com/Path"),
        ("https://0x8.0x8.0x8.0x8/", "https://8.8.8.8/"),
    ],
)
def test_hosts_are_stored_in_canonical_form(url: str, canonical: str) -> None:
    """The one parser registration and delivery share: what is stored is what is checked."""
    assert check_url(url, allow_private=True) == canonical


@pytest.mark.parametrize(
    "url",
    [
        "http://1.2.3.999/",  # ends in a number, yet no IPv4 address in any spelling
        "http://256.1/",
        "http://1.2.65536/",
        "http://08.1.1.1/",  # 08 is no octal number
        "http://1.2.3.4.5/",
        "http://0x7g.1/",
        "http://example.123/",
        "http://99999999999/",
        "http://" + ".".join(["a" * 63] * 4) + "/",  # a name of more than 253 characters
    ],
)
def test_hosts_that_are_neither_a_name_nor_an_address_are_refused(url: str) -> None:
    for allow in (False, True):
        with pytest.raises(InvalidArgument, match="url must"):
            check_url(url, allow_private=allow)


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://0xa9fea9fe/",  # 169.254.169.254 as one number
        "http://0251.0376.0251.0376/",  # and in octal
        "http://169.254.0.1/",
        "http://100.100.100.200/",
    ],
)
def test_the_metadata_range_is_refused_even_with_private_destinations_allowed(url: str) -> None:
    with pytest.raises(DestinationRefused, match="--allow-metadata-destinations"):
        check_url(url, allow_private=True)


def test_the_metadata_range_needs_its_own_allowance() -> None:
    url = "http://169.254.169.254/latest/meta-data/"
    assert check_url(url, allow_private=True, allow_metadata=True) == url
    assert check_url(url, allow_metadata=True) == url  # the one flag covers its own range
    with pytest.raises(DestinationRefused, match="--allow-private-destinations"):
        check_url("http://10.0.0.1/", allow_metadata=True)  # but no other
