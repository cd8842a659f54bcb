"""What the run is doing, on stderr: phases, each figure as it is measured, loading counters."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self._stream = stream
        self._started = time.monotonic()
        # On a terminal a counter redraws one line; in a log it prints every tenth.
        self.live = stream.isatty()

    def phase(self, title: str) -> None:
        self._stream.write("\n")
        self.note(f"== {title}")

    def result(self, label: str, text: str) -> None:
        self.note(f"  {label:<46} {text}")

    def note(self, text: str) -> None:
        self._stream.write(f"[{self.elapsed():6.1f}s] {text}\n")
        self._stream.flush()

    def redraw(self, text: str) -> None:
        self._stream.write(f"\r[{self.elapsed():6.1f}s]   {text}\033[K")
        self._stream.flush()

    def clear_line(self) -> None:
        self._stream.write("\r\033[K")

    def counter(self, label: str, total: int) -> Counter:
        return Counter(self, label, total)

    def elapsed(self) -> float:
        return time.monotonic() - self._started


class Counter:
    """A count towards a total, with its rate."""

    def __init__(self, progress: Progress, label: str, total: int) -> None:
        self._progress = progress
        self._label = label
        self._total = max(total, 1)
        self._done = 0
        self._started = time.monotonic()
        self._next_tenth = 1

    def advance(self, count: int) -> None:
        self._done += count
        rate = self._done / max(time.monotonic() - self._started, 1e-9)
        line = (
            f"{self._label}: {self._done:,}/{self._total:,} "
            f"({100 * self._done // self._total}%, {rate:,.0f}/s)"
        )
        if self._progress.live:
            self._progress.redraw(line)
        elif self._done * 10 >= self._next_tenth * self._total:
            self._next_tenth = self._done * 10 // self._total + 1
            self._progress.note(f"  {line}")

    def finish(self) -> None:
        seconds = time.monotonic() - self._started
        if self._progress.live:
            self._progress.clear_line()
        self._progress.note(f"  {self._label}: {self._done:,} in {seconds:.1f}s")
