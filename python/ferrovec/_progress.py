"""The progress bar that ``optimize(progress=True)`` draws on stderr."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def format_duration(seconds: float) -> str:
    s = int(seconds + 0.5)
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


class Bar:
    """Called as ``bar(done, total)``; redraws one line: the share done, the counts, the time
    elapsed and the time left at the rate so far. ``finish()`` ends the line. On a stream that
    is not a terminal (a log) it writes a line at every tenth instead."""

    def __init__(self, what: str, unit: str, stream: TextIO | None = None) -> None:
        self.what, self.unit = what, unit
        self.stream = stream if stream is not None else sys.stderr
        self.started = time.monotonic()
        self.drawn = False
        isatty = getattr(self.stream, "isatty", None)
        self.tty = bool(isatty and isatty())
        self.next_tenth = 0

    def line(self, done: int, total: int) -> str:
        elapsed = time.monotonic() - self.started
        share = done / total if total else 1.0
        left = ""
        if 0 < done < total:
            left = f", {format_duration(elapsed * (total - done) / done)} left"
        width = 24
        filled = int(share * width)
        return (
            f"{self.what} [{'#' * filled}{'.' * (width - filled)}] {share:4.0%} "
            f"{done:,}/{total:,} {self.unit}, {format_duration(elapsed)}{left}"
        )

    def __call__(self, done: int, total: int) -> None:
        if self.tty:
            self.stream.write("\r" + self.line(done, total) + "\x1b[K")
            self.drawn = True
        else:
            tenth = 10 * done // total if total else 10
            if tenth < self.next_tenth:
                return
            self.next_tenth = tenth + 1
            self.stream.write(self.line(done, total) + "\n")
        self.stream.flush()

    def finish(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False
