"""The sweep's rules that need no Redis: whose turn it is to have its count made again."""

from __future__ import annotations

from sessionstore._core.keys import KeySpace
from sessionstore._core.sweeping import RECOUNT_EVERY, recount_due


def test_every_bucket_is_counted_again_once_in_recount_every_sweeps() -> None:
    keys = KeySpace("ss", 128)
    buckets = [keys.created_index_of(f"tenant-{n}", f"sess_{n:02d}xxxx") for n in range(50)]
    for start in (0, 1, 7, 1000):
        turns = {
            bucket: [n for n in range(start, start + RECOUNT_EVERY) if recount_due(bucket, n)]
            for bucket in buckets
        }
        assert all(len(turn) == 1 for turn in turns.values())
    shares = [sum(recount_due(bucket, n) for bucket in buckets) for n in range(RECOUNT_EVERY)]
    assert max(shares) < len(buckets) / 2  # spread over the sweeps, not all at once
