"""A one-line progress display on a terminal (stderr), silent otherwise. No dependencies.

Updates are throttled (at most every `interval_s`) so that a fast backfill does not spend its time
drawing; `close()` leaves the last state on screen and moves to a new line.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, label: str, *, stream: TextIO | None = None, interval_s: float = 0.2) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self.enabled = self._stream.isatty()
        self._label = label
        self._interval_s = interval_s
        self._last_draw = 0.0
        self._width = 0
        self._text = ""

    def update(self, text: str, *, force: bool = False) -> None:
        self._text = text
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last_draw < self._interval_s:
            return
        self._last_draw = now
        line = f"{self._label}: {text}"
        padding = max(self._width - len(line), 0)
        self._width = len(line)
        self._stream.write("\r" + line + " " * padding)
        self._stream.flush()

    def close(self) -> None:
        if self.enabled and self._width:
            self.update(self._text, force=True)
            self._stream.write("\n")
            self._stream.flush()
