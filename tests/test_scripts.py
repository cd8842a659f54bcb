"""The Lua scripts ship as package data and keep the rules that make them cluster-safe."""

from __future__ import annotations

import re
from importlib import resources

from sessionstore import scripts
from sessionstore.codec import VIEW


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


def test_scripts_that_read_sessions_use_the_codec_view() -> None:
    readers = [s for s in scripts.ALL if b"local VIEW" in s.source]
    assert {s.name for s in readers} == {"validate", "read", "list_user"}
    for script in readers:
        listed = re.search(r"local VIEW = \{(.*?)\}", script.source.decode(), flags=re.DOTALL)
        assert listed is not None
        assert tuple(re.findall(r"'([^']+)'", listed[1])) == VIEW, script.name
