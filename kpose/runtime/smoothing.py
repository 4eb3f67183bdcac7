"""One-Euro smoothing of keypoints over time (Casiez et al., CHI 2012), per track.

A low-pass filter whose cutoff rises with speed: still keypoints stop jittering, moving ones
do not lag. Units: pixels and seconds.
"""

from __future__ import annotations

import math

import numpy as np

from kpose.runtime.estimator import Person


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff))
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """One-Euro filter over an array of values (e.g. ``(K, 2)`` keypoints, pixels).

    Args:
        min_cutoff: cutoff frequency at rest, Hz; lower smooths more.
        beta: cutoff increase per unit of speed, 1 / pixel; higher lags less when moving.
        d_cutoff: cutoff of the speed estimate, Hz.
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.05, d_cutoff: float = 1.0):
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self._value: np.ndarray | None = None
        self._speed: np.ndarray | None = None
        self._time = 0.0

    def __call__(self, value: np.ndarray, time_s: float) -> np.ndarray:
        """Filter ``value`` observed at ``time_s`` seconds; returns the smoothed array."""
        value = np.asarray(value, np.float32)
        if self._value is None or time_s <= self._time:
            self._value, self._speed, self._time = value, np.zeros_like(value), time_s
            return value
        dt = time_s - self._time
        speed = (value - self._value) / dt
        self._speed = self._speed + _alpha(self.d_cutoff, dt) * (speed - self._speed)
        cutoff = self.min_cutoff + self.beta * np.abs(self._speed)
        self._value = self._value + _alpha(cutoff, dt) * (value - self._value)
        self._time = time_s
        return self._value.astype(np.float32)


class KeypointSmoother:
    """One :class:`OneEuroFilter` per track id; people without a track id pass unchanged.

    Filters of tracks absent from a frame are dropped, so a track that comes back starts
    fresh. Arguments as for :class:`OneEuroFilter`.
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.05, d_cutoff: float = 1.0):
        self._settings = (min_cutoff, beta, d_cutoff)
        self._filters: dict[int, OneEuroFilter] = {}

    def __call__(self, people: list[Person], time_s: float) -> list[Person]:
        """Smooth the keypoints of ``people`` (in place) observed at ``time_s`` seconds."""
        seen = {}
        for person in people:
            if person.track_id is None:
                continue
            filt = self._filters.get(person.track_id) or OneEuroFilter(*self._settings)
            person.keypoints = filt(person.keypoints, time_s)
            seen[person.track_id] = filt
        self._filters = seen
        return people
