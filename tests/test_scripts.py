"""The Lua scripts ship as package data and keep the rules that make them cluster-safe."""

from __future__ import annotations

import re
from importlib import resources

from sessionstore import scripts


def test_every_lua_file_is_registered_once() -> None:
    files = {p.name for p in resources.files("sessionstore").joinpath("lua").iterdir()}
    assert files == {f"{script.name}.lua" for script in scripts.ALL}
    assert len({script.sha for script in scripts.ALL}) == len(scripts.ALL)


def test_scripts_never_read_the_server_clock_or_scan() -> None:
    for script in scripts.ALL:
        source = script.source.decode()
        assert not re.search(r"'(TIME|KEYS|SCAN|FLUSHALL|FLUSHDB)'", source), script.name


def test_every_script_opens_with_its_contract() -> None:
    for script in scripts.ALL:
        header = script.source.decode().splitlines()[:4]
        assert header[0].startswith(f"-- {script.name}.lua:")
        assert any("KEYS[1]" in line for line in header), script.name
