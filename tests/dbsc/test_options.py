"""The device_bound option and the header formats, with no Redis (the flows are sans-I/O)."""

from __future__ import annotations

from typing import Any

import pytest

from sessionstore._core.binding import Challenge
from sessionstore.errors import InvalidArgument
from sessionstore.middleware.dbsc import challenge_header, registration_header, sf_string
from sessionstore.middleware.policy import (
    DeviceBinding,
    Exchange,
    Policy,
    StoreCall,
    logout_flow,
)


def test_device_bound_true_takes_the_defaults_and_names_the_cookie() -> None:
    assert Policy("acme-corp").binding is None
    binding = Policy("acme-corp", device_bound=True).binding
    assert binding is not None and binding.cookie_name == "__Host-sessionstore-bound"
    plain = Policy("acme-corp", device_bound=True, secure_cookie=False).binding
    assert plain is not None and plain.cookie_name == "sessionstore-bound"
    named = Policy("acme-corp", device_bound=DeviceBinding(cookie_name="dbsc")).binding
    assert named is not None and named.cookie_name == "dbsc"
    assert DeviceBinding(cookie_seconds=300).cookie_max_age == 290  # a little short


@pytest.mark.parametrize(
    "options",
    [
        {"registration_path": "relative"},
        {"refresh_path": "/a b"},
        {"registration_path": "/same", "refresh_path": "/same"},
        {"cookie_name": "bad name"},
        {"cookie_seconds": 5},
        {"challenge_seconds": 100_000},
    ],
)
def test_bad_options_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgument):
        DeviceBinding(**options)


def test_device_bound_must_be_a_bool_or_a_binding() -> None:
    with pytest.raises(InvalidArgument):
        Policy("acme-corp", device_bound="yes")  # type: ignore[arg-type]


def test_logout_clears_the_bound_cookie_too() -> None:
    policy = Policy("acme-corp", device_bound=True)
    exchange = Exchange()
    flow = logout_flow(policy, exchange, None)
    with pytest.raises(StopIteration):
        next(flow)  # anonymous: nothing to revoke, no store call
    cleared = [value for name, value in exchange.headers if name == "set-cookie"]
    assert cleared == [policy.clearing_bound_cookie()]
    assert cleared[0].startswith("__Host-sessionstore-bound=; Max-Age=0")
    assert any(
        value.startswith("__Host-sessionstore-bound=")
        for name, value in policy.finish(exchange, [])
        if name == "set-cookie"
    )


def test_headers_are_structured_fields() -> None:
    binding = DeviceBinding()
    header = registration_header(binding, "/app", Challenge("abc", "xyz"))
    assert header == (
        '(ES256 RS256);path="/app/.sessionstore/dbsc/register";challenge="abc";authorization="xyz"'
    )
    assert challenge_header("c", "sess_1") == '"c";id="sess_1"'
    assert repr(Challenge("secret-challenge")).count("secret") == 0


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ('"abc"', "abc"),
        ('"a\\"b\\\\c";param=1', 'a"b\\c'),
        ("  bare.jwt-value_1  ", "bare.jwt-value_1"),
        ("bare;param", "bare"),
        ('"unterminated', None),
        ('"bad \\x escape"', None),
        ('"\x01"', None),
        ("two words", None),
        (None, None),
    ],
)
def test_sf_strings(header: str | None, value: str | None) -> None:
    assert sf_string(header) == value


def test_store_calls_name_store_methods() -> None:
    from sessionstore import AsyncSessionStore, SessionStore

    methods = StoreCall.__annotations__["method"]
    for name in methods.split('"')[1::2]:
        assert hasattr(SessionStore, name) and hasattr(AsyncSessionStore, name), name
