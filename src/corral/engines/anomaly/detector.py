"""A streaming, causal anomaly detector: a value outside everything seen before is news.

Why this rule: operators are paged for what a series has never done — a CPU that was never
above 40 % now at 100 %, a request count twice its old peak, a disk that stops writing below
its old floor. Each sample is compared with the range of all earlier samples (after a warm-up):

- ``novelty = max(x - hi, lo - x, 0) / (hi - lo)``, how far outside the old range, measured in
  that range; ``score = novelty / (novelty + half_score)`` lies in [0, 1);
- an alert is raised when a value leaves the old range after the warm-up, unless an alert in
  the same direction (above the old maximum, or below the old minimum) was raised in the last
  ``quiet`` samples: one incident, one page, since the values after a first alert usually widen
  the range again and again; a drop does not hide a later surge, nor a surge a later drop.

The decision at a sample uses only that sample and the detector's state, which depends only on
earlier samples, so appending later samples never changes earlier outputs. One configuration
serves every series; counts are in samples (the defaults assume 5-minute samples: one day of
warm-up, two days of quiet). Missing values (NaN) score 0 and leave the state alone.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

TINY = 1e-9


@dataclass(frozen=True)
class DetectorConfig:
    warmup: int = 288  # samples seen before any alert (one day of 5-minute samples)
    quiet: int = 576  # samples after an alert during which no new alert is raised (two days)
    half_score: float = 0.05  # novelty (in units of the old range) that scores 0.5


DEFAULT_CONFIG = DetectorConfig()


@dataclass(frozen=True)
class Verdict:
    score: float
    alert: bool


class StreamingDetector:
    """The detector's state for one series; feed samples in time order with :meth:`update`."""

    def __init__(self, config: DetectorConfig = DEFAULT_CONFIG) -> None:
        self.config = config
        self.seen = 0
        self.lo = math.inf
        self.hi = -math.inf
        self.since_alert: dict[int, int] = {}  # direction (+1 above, -1 below) -> samples

    def update(self, value: float) -> Verdict:
        if math.isnan(value):
            self._tick()
            return Verdict(0.0, False)
        novelty, direction = self._novelty(value)
        score = novelty / (novelty + self.config.half_score) if novelty > 0 else 0.0
        alert = novelty > 0 and self.seen >= self.config.warmup and not self._quiet(direction)
        self._tick()
        if alert:
            self.since_alert[direction] = 0
        self.seen += 1
        self.lo, self.hi = min(self.lo, value), max(self.hi, value)
        return Verdict(score, alert)

    def _novelty(self, value: float) -> tuple[float, int]:
        """How far outside the old range (in units of it), and on which side."""
        if self.seen == 0:
            return 0.0, 0
        spread = max(self.hi - self.lo, TINY * max(1.0, abs(self.hi)))
        if value > self.hi:
            return (value - self.hi) / spread, 1
        if value < self.lo:
            return (self.lo - value) / spread, -1
        return 0.0, 0

    def _quiet(self, direction: int) -> bool:
        since = self.since_alert.get(direction)
        return since is not None and since < self.config.quiet

    def _tick(self) -> None:
        for direction in self.since_alert:
            self.since_alert[direction] += 1


def detect(values: Iterable[float], config: DetectorConfig = DEFAULT_CONFIG) -> list[Verdict]:
    """One verdict per value, each decided from that value and the ones before it."""
    detector = StreamingDetector(config)
    return [detector.update(v) for v in values]
