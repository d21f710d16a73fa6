"""The one interface every metrics store speaks, and what it promises.

Time is whole epoch seconds. A bucket of ``step`` seconds starts at a multiple
of ``step`` and holds samples with ``start <= ts < start + step``; ranges are
half-open ``[start, end)`` too.

Rollups: for each resolution in ``ROLLUP_RESOLUTIONS`` (5 min, 1 h, 1 day)
``rollup(now)`` summarises every closed bucket of raw samples into count, min,
avg, max and p95 (linear interpolation, like numpy's default). Retention then
drops raw samples and each rollup level past its age limit; queries over old
ranges are answered from the finest rollup that still covers them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from corral.domain.metrics import (
    EntityKind,
    FloatArray,
    IntArray,
    Latest,
    Point,
    Ranked,
    RollupRow,
    SampleBatch,
    Stat,
)

ROLLUP_RESOLUTIONS: tuple[int, ...] = (300, 3600, 86400)

DAY = 86400


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How long each level is kept, in seconds."""

    raw_s: int = 35 * DAY
    r300_s: int = 90 * DAY
    r3600_s: int = 730 * DAY
    r86400_s: int = 3650 * DAY

    def for_resolution(self, resolution: int) -> int:
        return {0: self.raw_s, 300: self.r300_s, 3600: self.r3600_s, 86400: self.r86400_s}[
            resolution
        ]


@dataclass(frozen=True)
class SeriesColumns:
    """Buckets of many series read at once, as columns: bucket ``i`` of entity
    ``entities[entity[i]]`` and metric ``metrics[metric[i]]`` starts at ``ts[i]``.

    Why columns: a fleet-wide read of a chunk of VMs is one query, and its answer
    goes straight into numpy arrays without a Python object per bucket.
    """

    entities: tuple[str, ...]
    metrics: tuple[str, ...]
    entity: IntArray
    metric: IntArray
    ts: IntArray
    value: FloatArray

    @classmethod
    def empty(cls, entities: Sequence[str], metrics: Sequence[str]) -> SeriesColumns:
        none = np.zeros(0, dtype=np.int64)
        return cls(tuple(entities), tuple(metrics), none, none, none, np.zeros(0))

    def __len__(self) -> int:
        return len(self.ts)


class MetricsStore(Protocol):
    """Write samples, roll them up, age them out, and answer the questions Corral asks."""

    retention: RetentionPolicy
    #: True when apply_retention really deletes raw samples (False: the server ages them out).
    deletes_raw: bool

    def write(self, batch: SampleBatch) -> int:
        """Store every sample of ``batch`` (all or nothing); returns how many."""
        ...

    def series(
        self,
        kind: EntityKind,
        entity: str,
        metric: str,
        start: int,
        end: int,
        step: int,
        stat: Stat = Stat.avg,
    ) -> list[Point]:
        """One entity's metric in ``step``-second buckets over ``[start, end)``."""
        ...

    def series_many(
        self,
        kind: EntityKind,
        entities: Sequence[str],
        metrics: Sequence[str],
        start: int,
        end: int,
        step: int,
        stat: Stat = Stat.avg,
    ) -> SeriesColumns:
        """What ``series`` answers for every (entity, metric) pair, read set-based at once."""
        ...

    def raw(
        self, kind: EntityKind, entity: str, metric: str, start: int, end: int
    ) -> list[tuple[int, str, float]]:
        """Raw samples as (ts, host, value), oldest first."""
        ...

    def per_entity(
        self, kind: EntityKind, metric: str, start: int, end: int, stat: Stat = Stat.p95
    ) -> dict[str, float]:
        """``stat`` of every entity's samples over ``[start, end)`` (e.g. the 30-day p95 per VM)."""
        ...

    def top(
        self, kind: EntityKind, metric: str, start: int, end: int, n: int, stat: Stat = Stat.avg
    ) -> list[Ranked]:
        """The ``n`` entities with the highest ``stat`` over the range, highest first."""
        ...

    def latest(self, kinds: Sequence[EntityKind], since: int) -> list[Latest]:
        """The newest sample of every series of those kinds written at or after ``since``."""
        ...

    def rollup_rows(
        self, resolution: int, kind: EntityKind, entity: str, metric: str, start: int, end: int
    ) -> list[RollupRow]:
        """Stored rollup buckets of one series at ``resolution`` seconds."""
        ...

    def rollup(self, now: int) -> int:
        """Summarise every raw bucket closed before ``now`` not yet rolled up; returns rows made."""
        ...

    def apply_retention(self, now: int) -> int:
        """Drop what is older than the policy allows; returns rows dropped (when known)."""
        ...

    def close(self) -> None: ...


def align(ts: int, step: int) -> int:
    return ts - ts % step


def check_range(start: int, end: int, step: int | None = None) -> None:
    from corral.errors import ValidationError

    if end <= start:
        raise ValidationError(f"the range is empty: end ({end}) must be after start ({start}).")
    if step is not None and step <= 0:
        raise ValidationError(f"step must be a positive number of seconds, not {step}.")


def finest_covering(resolutions: Sequence[int], step: int) -> int | None:
    """The coarsest rollup resolution that divides ``step`` (fewest rows to read), or None."""
    fits = [r for r in resolutions if step % r == 0]
    return max(fits) if fits else None
