"""Capacity runway in days: when the fleet's CPU, memory and storage run out at the growth
its hosts' use shows.

The growth is the planning engine's (``growth_per_month``: the cluster trend of the hosts'
CPU and memory use over the last weeks, relative to its level, the larger of the two) read
from the metrics store; ``corral ha check --history`` projects HA with the same rate.
Storage grows at its own rate, the trend of what the hosts' pools hold, when the collector
has stored that history; else it is assumed to grow like CPU and memory (the page says
which). The runway applies each rate to what is allocated now (vCPUs and memory as the
what-if summary counts them, storage as the pools report it): allocation grows linearly by
``rate`` of today's level a month until it reaches capacity. The administrator's landing
page shows it for the fleet as it is, the planning page for the fleet after a what-if.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import String, cast, func, select

from corral.domain.metrics import EntityKind
from corral.engines.planning.forecast.history import (
    History,
    Series,
    cluster_series,
    growth_per_month,
    relative_growth,
)
from corral.engines.planning.forecast.whatif import FleetSummary, WhatIfResult, summarize
from corral.engines.planning.model import Fleet
from corral.metrics.store.base import MetricsStore
from corral.store import models as m
from corral.store.db import Database

DAY = 86400
MONTH_DAYS = 30.44
#: Runways past this many days are "more than five years" (None).
HORIZON_DAYS = 5 * 365
#: The host use the growth is read from, and over how many days.
HISTORY_DAYS = 28
CPU, MEM = "host_cpu_pct", "host_mem_used_bytes"
#: What the hosts' active storage pools hold (the collector's gauge).
STORAGE = "host_storage_used_bytes"
STORAGE_ROW = "Storage (pools allocated)"


@dataclass(frozen=True)
class Growth:
    """Relative growth of demand a month (0.02 = 2 %); None when nothing is measured yet."""

    per_month: float | None
    #: how many hosts' use it was read from, over ``days`` days
    hosts: int
    days: int


@dataclass(frozen=True)
class ResourceRunway:
    resource: str
    used_pct: float
    #: days until it is used up; 0 when it already is; None when not within the horizon or
    #: no growth is known
    days: float | None
    #: the growth a month its days are counted at (None: none measured)
    per_month: float | None = None


@dataclass(frozen=True)
class Runway:
    growth: Growth
    resources: tuple[ResourceRunway, ...]
    horizon_days: int = HORIZON_DAYS
    #: storage's own growth, from what the pools hold; None: storage assumes ``growth``
    storage_growth: Growth | None = None

    @property
    def storage(self) -> ResourceRunway | None:
        """The storage row (None: no pool known)."""
        return next((r for r in self.resources if r.resource == STORAGE_ROW), None)

    @property
    def shortest(self) -> ResourceRunway | None:
        """The resource that runs out first (None: none within the horizon)."""
        dated = [r for r in self.resources if r.days is not None]
        return min(dated, key=lambda r: r.days or 0.0) if dated else None


def measured_growth(store: MetricsStore, fleet: Fleet, now: int) -> Growth:
    """The monthly growth of the hosts' CPU (MHz) and memory (MiB) use, hourly means of the
    last ``HISTORY_DAYS`` days (set-based: one read for every host)."""
    history: History = {}
    for name, metric, s in _host_series(store, fleet, (CPU, MEM), now):
        scale = fleet.host(name).cpu_capacity_mhz / 100 if metric == CPU else 1 / 2**20
        resource = "cpu_mhz" if metric == CPU else "memory_mib"
        history[(name, resource)] = Series(s.times, s.values * scale)
    if not history:
        return Growth(None, 0, HISTORY_DAYS)
    measured = {host for host, _ in history}
    return Growth(growth_per_month(history), len(measured), HISTORY_DAYS)


def measured_storage_growth(store: MetricsStore, fleet: Fleet, now: int) -> Growth | None:
    """The monthly growth of what the hosts' storage pools hold (the trend of their sum,
    hourly means of the last ``HISTORY_DAYS`` days, shrinking counted as 0); None when the
    metrics store has no such history."""
    history: History = {
        (name, STORAGE): s for name, _, s in _host_series(store, fleet, (STORAGE,), now)
    }
    total = cluster_series(history, STORAGE)
    rate = None if total is None else relative_growth(total)
    if rate is None:
        return None
    return Growth(max(rate, 0.0), len(history), HISTORY_DAYS)


def _host_series(
    store: MetricsStore, fleet: Fleet, metrics: Sequence[str], now: int
) -> Iterator[tuple[str, str, Series]]:
    """(host, metric, hourly means) of the last ``HISTORY_DAYS`` days, for every host and
    metric with at least 3 of them."""
    hosts = [h.name for h in fleet.hosts]
    start = now - HISTORY_DAYS * DAY
    cols = store.series_many(EntityKind.host, hosts, metrics, start - start % 3600, now, 3600)
    for e, name in enumerate(cols.entities):
        for k, metric in enumerate(cols.metrics):
            keep = (cols.entity == e) & (cols.metric == k) & np.isfinite(cols.value)
            if keep.sum() >= 3:
                yield name, metric, Series(cols.ts[keep].astype(np.float64), cols.value[keep])


def storage_used_pct(db: Database) -> float | None:
    """Allocated share of the active storage pools' capacity, each shared storage counted
    once (None: no pool known)."""
    p = m.Pool
    own = cast(p.host_id, String).concat("/").concat(p.name)
    key = func.coalesce(func.nullif(p.storage_key, ""), own)
    per_storage = (
        select(func.max(p.capacity_bytes).label("cap"), func.max(p.allocation_bytes).label("used"))
        .where(p.active.is_(True))
        .group_by(key)
        .subquery()
    )
    with db.session() as s:
        cap, used = s.execute(
            select(func.sum(per_storage.c.cap), func.sum(per_storage.c.used))
        ).one()
    if not cap:
        return None
    return round(100 * float(used or 0) / float(cap), 2)


def fleet_runway(db: Database, store: MetricsStore, fleet: Fleet, now: int) -> Runway:
    """The runway of ``fleet`` as it is: its allocation, its pools, its hosts' growth."""
    summary = summarize(fleet, fleet.settings.ha_host_failures)
    growth, storage_growth = _growths(store, fleet, now)
    return runway(summary, storage_used_pct(db), growth, storage_growth)


def before_after(
    db: Database, store: MetricsStore, fleet: Fleet, result: WhatIfResult, now: int
) -> tuple[Runway, Runway]:
    """The runway of ``fleet`` before and after a what-if (``result``), at the same growth
    and with the same pools (a what-if changes hosts and VMs, not storage)."""
    storage, (growth, storage_growth) = storage_used_pct(db), _growths(store, fleet, now)
    return (
        runway(result.before, storage, growth, storage_growth),
        runway(result.after, storage, growth, storage_growth),
    )


def _growths(store: MetricsStore, fleet: Fleet, now: int) -> tuple[Growth, Growth | None]:
    return measured_growth(store, fleet, now), measured_storage_growth(store, fleet, now)


def runway(
    summary: FleetSummary,
    storage_pct: float | None,
    growth: Growth,
    storage_growth: Growth | None = None,
) -> Runway:
    """Each resource's days left from the allocation of ``summary``: CPU and memory at
    ``growth``, storage at ``storage_growth`` when measured, else at ``growth`` too."""
    found = [
        ("CPU (vCPUs allocated)", summary.vcpu_allocated_pct, growth),
        ("Memory (allocated)", summary.memory_allocated_pct, growth),
    ]
    if storage_pct is not None:
        found.append((STORAGE_ROW, storage_pct, storage_growth or growth))
    return Runway(
        growth,
        tuple(
            ResourceRunway(name, pct, days_left(pct, rate), rate.per_month)
            for name, pct, rate in found
        ),
        storage_growth=storage_growth,
    )


def days_left(used_pct: float, growth: Growth) -> float | None:
    """Days until ``used_pct`` reaches 100 growing linearly by ``growth`` of itself a month."""
    if used_pct >= 100:
        return 0.0
    rate = growth.per_month
    if rate is None or rate <= 0 or used_pct <= 0:
        return None
    days = MONTH_DAYS * (100 / used_pct - 1) / rate
    return None if not math.isfinite(days) or days > HORIZON_DAYS else round(days, 1)


__all__ = [
    "Growth",
    "ResourceRunway",
    "Runway",
    "before_after",
    "days_left",
    "fleet_runway",
    "measured_growth",
    "measured_storage_growth",
    "runway",
    "storage_used_pct",
]
