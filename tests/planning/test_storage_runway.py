"""Storage's runway at its own measured growth: what the hosts' pools hold, from the
collector's history in a real DuckDB metrics store; without that history storage assumes the
CPU and memory growth, and the runway says so (``storage_growth`` None)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from corral.domain.metrics import EntityKind, Sample, SampleBatch
from corral.engines.planning import Fleet, Host
from corral.engines.planning.forecast.whatif import summarize
from corral.metrics.store import open_store
from corral.services import capacity_runway as cr

DAY = 86400
NOW = 1_780_000_000


def fleet() -> Fleet:
    hosts = tuple(Host(f"h{i}", cores=8, cpu_mhz=2600, memory_mib=65536) for i in range(3))
    return Fleet(hosts, ())


def hourly(metric: str, per_day: float, level: float) -> SampleBatch:
    """28 days of hourly samples on every host, growing linearly by ``per_day`` of
    ``level`` a day up to ``level`` now."""
    ts = np.arange(NOW - 28 * DAY, NOW, 3600, dtype=np.int64)
    values = level * (1 - per_day * (NOW - ts) / DAY)
    return SampleBatch.from_samples(
        [
            Sample(EntityKind.host, h.name, h.name, metric, int(t), float(v))
            for h in fleet().hosts
            for t, v in zip(ts, values, strict=True)
        ]
    )


def test_storage_grows_at_its_own_rate_when_the_store_has_its_history(tmp_path: Path) -> None:
    store = open_store(f"duckdb:///{tmp_path / 'metrics.duckdb'}")
    try:
        store.write(hourly(cr.CPU, 0.001, 40.0))
        store.write(hourly(cr.MEM, 0.001, 32 * 2**30))
        assert cr.measured_storage_growth(store, fleet(), NOW) is None
        before = cr.runway(summarize(fleet(), 0), 50.0, cr.measured_growth(store, fleet(), NOW))
        assert before.storage_growth is None
        assert before.storage is not None and before.storage.per_month == before.growth.per_month
        store.write(hourly(cr.STORAGE, 0.004, 2e12))
        storage_growth = cr.measured_storage_growth(store, fleet(), NOW)
        assert storage_growth is not None and storage_growth.hosts == 3
        # a slope of 0.4 % of today's level a day: 12.2 % a month
        assert storage_growth.per_month == pytest.approx(0.004 * cr.MONTH_DAYS, rel=0.02)
        growth = cr.measured_growth(store, fleet(), NOW)
        assert growth.per_month == pytest.approx(0.001 * cr.MONTH_DAYS, rel=0.02)
        after = cr.runway(summarize(fleet(), 0), 50.0, growth, storage_growth)
        assert after.storage == cr.ResourceRunway(
            cr.STORAGE_ROW,
            50.0,
            cr.days_left(50.0, storage_growth),
            storage_growth.per_month,
        )
        assert after.storage.days is not None and after.storage.days == pytest.approx(
            cr.MONTH_DAYS / storage_growth.per_month, rel=0.01
        )
        assert [r.per_month for r in after.resources[:2]] == [growth.per_month] * 2
    finally:
        store.close()
