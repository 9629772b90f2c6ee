"""Progress for long loads: a live line on a terminal, milestone lines in logs and CI."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Reports ``step`` and ``done/total``; at most every ``interval`` seconds when live."""

    def __init__(self, label: str, *, stream: TextIO | None = None, enabled: bool = True,
                 interval: float = 0.5) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.live = enabled and self.stream.isatty()
        self.interval = interval
        self._last = 0.0
        self._t0 = time.monotonic()

    def step(self, message: str) -> None:
        if self.enabled:
            self._end_live()
            print(f"[{self.label}] {message}", file=self.stream, flush=True)

    def update(self, step: str, done: int, total: int) -> None:
        if not self.live:
            return
        now = time.monotonic()
        if now - self._last < self.interval and done < total:
            return
        self._last = now
        pct = 100.0 * done / total if total else 100.0
        print(f"\r[{self.label}] {step} {done:,}/{total:,} ({pct:4.1f}%)", end="",
              file=self.stream, flush=True)
        if done >= total:
            print(file=self.stream, flush=True)
            self._last = 0.0

    def elapsed(self) -> float:
        return time.monotonic() - self._t0

    def _end_live(self) -> None:
        if self.live and self._last:
            print(file=self.stream, flush=True)
            self._last = 0.0
