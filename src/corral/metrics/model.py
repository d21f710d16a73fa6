"""Kept for existing importers: metrics data types live in :mod:`corral.domain.metrics`."""

from corral.domain.metrics import (
    DomainCounters,
    EntityKind,
    FloatArray,
    HostCounters,
    HostSample,
    IntArray,
    Latest,
    Point,
    Ranked,
    RollupRow,
    Sample,
    SampleBatch,
    SeriesKey,
    Stat,
    empty_batch,
)

__all__ = [
    "DomainCounters",
    "EntityKind",
    "FloatArray",
    "HostCounters",
    "HostSample",
    "IntArray",
    "Latest",
    "Point",
    "Ranked",
    "RollupRow",
    "Sample",
    "SampleBatch",
    "SeriesKey",
    "Stat",
    "empty_batch",
]
