"""Progress for long CLI work: one updating line on a terminal, a line per 10% otherwise; stderr."""
from __future__ import annotations

import sys
import time

from ..text import shown


class Progress:
    def __init__(self, total: int, what: str, enabled: bool = True, stream=None):
        self.total, self.what, self.n = total, what, 0
        self.stream = stream or sys.stderr
        self.enabled = enabled and total > 0
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last_decile, self._t0 = -1, time.monotonic()

    def step(self, item: str = "") -> None:
        self.n += 1
        if not self.enabled:
            return
        if self.tty:
            self.stream.write(f"\r{self.what}: {self.n}/{self.total} {shown(item)[-60:]:60}")
        else:
            decile = self.n * 10 // self.total
            if decile != self._last_decile:
                self._last_decile = decile
                self.stream.write(f"{self.what}: {self.n}/{self.total} files ({decile * 10}%)\n")
        self.stream.flush()

    def done(self) -> None:
        if self.enabled:
            if self.tty:
                self.stream.write("\n")
            self.stream.write(f"{self.what}: {self.n} files in {time.monotonic() - self._t0:.1f} s\n")
            self.stream.flush()
