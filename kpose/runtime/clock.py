"""Per-stage wall-clock timing of one frame (standard library only)."""

from __future__ import annotations

import time


class StageClock:
    """Splits wall time into named laps, in milliseconds.

    >>> clock = StageClock()
    >>> ...; clock.lap("crop")      # ms since the clock was made
    >>> ...; clock.lap("infer")     # ms since the last lap
    >>> clock.laps                  # {"crop": ..., "infer": ...}
    """

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        """Record the milliseconds since the previous lap (or since creation) as ``name``."""
        now = time.perf_counter()
        self.laps[name] = (now - self._last) * 1e3
        self._last = now
