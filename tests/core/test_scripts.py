"""The Lua scripts ship as package data and keep the rules that make them cluster-safe."""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

import pytest

from sessionstore._core import scripts
from sessionstore._core.codec import VIEW
from sessionstore._core.kinds import EventType, Reason


def test_every_lua_file_is_registered_once() -> None:
    files = {p.name for p in resources.files("sessionstore").joinpath("lua").iterdir()}
    apart = (scripts.WEBHOOK_ADD, scripts.RECHUNK)
    assert files == {f"{script.name}.lua" for script in (*scripts.ALL, *apart)} | {
        f"{part}.lua" for part in scripts.SHARED
    }
    assert len({script.sha for script in scripts.ALL}) == len(scripts.ALL)


def test_scripts_never_read_the_server_clock_or_scan() -> None:
    for script in scripts.ALL:
        source = script.source.decode()
        assert not re.search(r"'(TIME|KEYS|SCAN|FLUSHALL|FLUSHDB)'", source), script.name


def test_every_script_opens_with_its_contract() -> None:
    for script in scripts.ALL:
        header = _own_source(script).splitlines()[:4]
        assert header[0].startswith(f"-- {script.name}.lua:")
        assert any("KEYS[1]" in line for line in header), script.name


def test_every_script_reads_sessions_through_the_codec_view() -> None:
    fields = ", ".join(f"'{field}'" for field in VIEW)
    for script in scripts.ALL:
        source = script.source.decode()
        assert not re.search(r"\bAT\.|unpack\(VIEW\)", source), script.name  # all literals
        readers = _own_source(script).count("unpack(VIEW)")
        assert source.count(fields) == readers, script.name


def test_field_places_follow_the_codec_view() -> None:
    # validate.lua says AT.u; Redis sees the place of 'u' in codec.VIEW.
    source = scripts.VALIDATE.source.decode()
    assert f"view[{VIEW.index('u') + 1}]" in source
    assert f"view[{VIEW.index('h') + 1}]" in source


def test_scripts_never_spell_the_field_list_themselves() -> None:
    # One source of truth: the list comes from codec.VIEW, never copied into a .lua file.
    for path in resources.files("sessionstore").joinpath("lua").iterdir():
        assert "'ua15'" not in path.read_text(), path.name


def _own_source(script: scripts.Script) -> str:
    """The script's own file, without the prelude scripts.py puts in front of it."""
    return resources.files("sessionstore").joinpath("lua", f"{script.name}.lua").read_text()


def test_scripts_name_event_types_and_reasons_only_through_the_enums() -> None:
    emits = [
        call
        for script in scripts.ALL
        for call in re.findall(r"emit\(bucket, ([^,]+),", _raw(script.name))
    ]
    assert emits and all(kind.startswith("EVENT.") for kind in emits), emits
    assert "EVENT.<" not in "".join(emits)


def test_every_event_type_and_reason_is_emitted_by_some_script() -> None:
    sources = "".join(_raw(script.name) for script in scripts.ALL) + _raw("lib")
    for kind in EventType:
        assert f"EVENT.{kind.script_name}" in sources, kind
    for reason in Reason:
        assert f"REASON.{reason.name.lower()}" in sources, reason


def test_an_unknown_event_name_fails_when_the_script_loads(monkeypatch: Any) -> None:
    real_read = scripts._read
    monkeypatch.setattr(
        scripts,
        "_read",
        lambda name: real_read(name) + (b"\nemit(b, EVENT.renamed)" if name == "revoke" else b""),
    )
    with pytest.raises(KeyError, match="renamed"):
        scripts._load("revoke")


def test_loaded_scripts_carry_the_enums_letters() -> None:
    assert not re.search(r"\b(EVENT|REASON)\.\w", scripts.REVOKE_WHERE.source.decode())
    assert f"'{EventType.REVOKED.code}'" in scripts.REVOKE_WHERE.source.decode()
    assert f"'{Reason.BULK.code}'" in scripts.REVOKE_WHERE.source.decode()


def _raw(name: str) -> str:
    return resources.files("sessionstore").joinpath("lua", f"{name}.lua").read_text()
