"""Which tests one xdist worker runs together (pyproject: ``--dist loadgroup``).

A test without an ``xdist_group`` mark is a unit of its own: any worker runs it, whenever one
is free, so the two workers finish together instead of one waiting on the last big file. A
file whose tests share something costly or singular for the module (a browser, a console
server, a cluster of its own on fixed ports) is one group, run by one worker, as
``--dist loadfile`` ran every file; a directory's conftest groups its files with ``by_file``.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def by_file(items: Sequence[pytest.Item], directory: Path, spread: Collection[str] = ()) -> None:
    """Group each test file directly in ``directory`` (but those named in ``spread``), unless
    its tests name a group already."""
    for item in items:
        path = item.path
        if path.parent != directory or path.name in spread:
            continue
        if any(True for _ in item.iter_markers("xdist_group")):
            continue
        item.add_marker(pytest.mark.xdist_group(path.relative_to(ROOT).as_posix()))
