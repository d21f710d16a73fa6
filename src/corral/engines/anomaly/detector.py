"""A streaming, causal anomaly detector: a series doing what it has never done before is news.

Why this rule: operators are paged for what a series has never done — a CPU that was never
above 40 % now at 100 %, a request count twice its old peak, a disk that stops writing below
its old floor, a load that sits at a level between its usual floor and its usual spikes, a flat
metric that starts to swing. Three features of each sample are compared with everything the
series did before (after a warm-up):

- the value outside the old range: ``novelty = max(x - hi, lo - x, 0) / (hi - lo)``, how far
  outside, measured in that range;
- the value inside the range but in an empty gap of it: ``gap = min(x - below, above - x) /
  (hi - lo)`` with ``below``/``above`` the nearest earlier values; a gap counts only when wider
  than ``gap_alert`` (a tenth of the range: a sample between the usual level and the usual
  spikes, where the series has never been, e.g. a daily batch that half-runs);
- the agitation: the mean absolute change between samples over the last ``agitation_samples``;
  only a rise above its old maximum counts (a series that starts to swing harder than ever).

``score = n / (n + half_score)`` of the largest of them lies in [0, 1). An alert is raised when
a value leaves its old range after the warm-up, unless an alert in the same direction (above the
old maximum, or below the old minimum) came in the last ``quiet`` samples: one incident, one
page, since the values after a first alert usually widen the range again and again; a drop does
not hide a later surge, nor a surge a later drop. A wide gap alerts unless a gap alert came in
the last ``quiet`` samples (its own refractory period: a new level between old ones is a new
incident even shortly after a surge). A new agitation maximum alerts only when no range or
agitation alert came in the last ``quiet`` samples.

The decision at a sample uses only that sample and the detector's state, which depends only on
earlier samples, so appending later samples never changes earlier outputs. One configuration
serves every series; counts are in samples (the defaults assume 5-minute samples: one day of
warm-up, two and a half days of quiet, three hours of agitation). Missing values (NaN) score 0
and leave the state alone. The gap rule keeps every earlier value in a sorted list (memory
grows by one float a sample: about 3 MB for a year of 5-minute samples).
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

TINY = 1e-9
UP, DOWN, AGITATION, GAP = 1, -1, 2, 3


@dataclass(frozen=True)
class DetectorConfig:
    warmup: int = 288  # samples seen before any alert (one day of 5-minute samples)
    quiet: int = 720  # samples after an alert during which no like alert is raised (2.5 days)
    agitation_samples: int = 36  # changes averaged into the agitation (three hours)
    half_score: float = 0.05  # novelty (in units of the old range) that scores 0.5
    gap_alert: float = 0.1  # empty gap inside the range (in units of the range) that alerts


DEFAULT_CONFIG = DetectorConfig()


@dataclass(frozen=True)
class Verdict:
    score: float
    alert: bool


class _Range:
    """The lowest and highest of everything seen, and how far a new value lies outside."""

    def __init__(self) -> None:
        self.lo = math.inf
        self.hi = -math.inf
        self.seen: list[float] = []  # every value so far, sorted

    def _spread(self) -> float:
        return max(self.hi - self.lo, TINY * max(1.0, abs(self.hi)))

    def novelty(self, value: float) -> tuple[float, int]:
        if self.lo > self.hi:
            return 0.0, 0
        spread = self._spread()
        if value > self.hi:
            return (value - self.hi) / spread, UP
        if value < self.lo:
            return (self.lo - value) / spread, DOWN
        return 0.0, 0

    def gap(self, value: float) -> float:
        """Distance from a value strictly inside the range to the nearest earlier value."""
        if not self.lo < value < self.hi:
            return 0.0
        i = bisect.bisect_left(self.seen, value)
        return min(value - self.seen[i - 1], self.seen[i] - value) / self._spread()

    def add(self, value: float) -> None:
        self.lo, self.hi = min(self.lo, value), max(self.hi, value)
        bisect.insort(self.seen, value)


class StreamingDetector:
    """The detector's state for one series; feed samples in time order with :meth:`update`."""

    def __init__(self, config: DetectorConfig = DEFAULT_CONFIG) -> None:
        self.config = config
        self.seen = 0
        self.values = _Range()
        self.agitations = _Range()
        self.changes: deque[float] = deque(maxlen=config.agitation_samples)
        self.previous: float | None = None
        self.since_alert: dict[int, int] = {}  # UP, DOWN or AGITATION -> samples since

    def update(self, value: float) -> Verdict:
        if math.isnan(value):
            self._tick()
            return Verdict(0.0, False)
        novelty, direction = self.values.novelty(value)
        gap = self.values.gap(value)
        agitation = self._agitation(value)
        stirred, rising = self.agitations.novelty(agitation) if agitation is not None else (0, 0)
        stirred = stirred if rising == UP else 0.0
        kinds = self._decide(novelty, direction, gap, stirred)
        self._tick()
        for kind in kinds:
            self.since_alert[kind] = 0
        self.seen += 1
        self.values.add(value)
        if agitation is not None:
            self.agitations.add(agitation)
        top = max(novelty, gap, stirred)
        return Verdict(top / (top + self.config.half_score) if top > 0 else 0.0, bool(kinds))

    def _agitation(self, value: float) -> float | None:
        """Mean absolute change over the last samples, once there are enough of them."""
        if self.previous is not None:
            self.changes.append(abs(value - self.previous))
        self.previous = value
        if len(self.changes) < self.config.agitation_samples:
            return None
        return sum(self.changes) / len(self.changes)

    def _decide(self, novelty: float, direction: int, gap: float, stirred: float) -> list[int]:
        """The kinds of alert this sample raises (none during the warm-up)."""
        if self.seen < self.config.warmup:
            return []
        if novelty > 0:
            return [] if self._quiet(direction) else [direction]
        kinds = [GAP] if gap > self.config.gap_alert and not self._quiet(GAP) else []
        if stirred > 0 and not any(self._quiet(d) for d in (UP, DOWN, AGITATION)):
            kinds.append(AGITATION)
        return kinds

    def _quiet(self, kind: int) -> bool:
        since = self.since_alert.get(kind)
        return since is not None and since < self.config.quiet

    def _tick(self) -> None:
        for kind in self.since_alert:
            self.since_alert[kind] += 1


def detect(values: Iterable[float], config: DetectorConfig = DEFAULT_CONFIG) -> list[Verdict]:
    """One verdict per value, each decided from that value and the ones before it."""
    detector = StreamingDetector(config)
    return [detector.update(v) for v in values]
