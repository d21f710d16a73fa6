"""Forecast: the fit recovers a known trend and season; exhaustion found by hand; what-if."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from corral.engines.planning import (
    AddVMs,
    RemoveHost,
    ReserveCapacity,
    forecast_fleet,
    load_fleet,
    load_history,
    time_to_exhaustion,
    what_if,
)
from corral.engines.planning.forecast.seasonal import DAY, fit
from corral.errors import NotFoundError, ValidationError


def _series(days: int, slope: float, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(0, days * DAY, 3600.0)
    weekly = 150 * (np.floor(t / DAY) % 7 >= 5)  # busier weekends
    y = (
        1000
        + slope * t / DAY
        + 200 * np.sin(2 * np.pi * t / DAY)
        + weekly
        + rng.normal(0, 20, t.size)
    )
    return t, y


def test_fit_recovers_trend_and_uses_both_seasons() -> None:
    t, y = _series(28, 10.0)
    model = fit(t, y)
    assert model.slope_per_day == pytest.approx(10.0, abs=0.6)
    assert "daily" in model.method and "weekly" in model.method
    assert model.r2 > 0.95


def test_short_history_falls_back_to_trend() -> None:
    t, y = _series(1, 10.0)
    assert fit(t, y).method == "least-squares linear trend"


def test_exhaustion_by_hand() -> None:
    """Trend 1000 + 10/day, daily swing +-200, no weekly: capacity 2000 is hit near day 78.

    1000 + 10 d + 200 + q95(noise ~ 33) >= 2000  ->  d ~ 76.7, i.e. ~48.7 days after day 28.
    """
    rng = np.random.default_rng(3)
    t = np.arange(0, 28 * DAY, 3600.0)
    y = 1000 + 10 * t / DAY + 200 * np.sin(2 * np.pi * t / DAY) + rng.normal(0, 20, t.size)
    result = time_to_exhaustion("h", "memory_mib", t, y, 2000.0)
    assert result.days_to_exhaustion == pytest.approx(48.7, abs=2.0)
    flat = time_to_exhaustion("h", "memory_mib", t, np.full(t.size, 500.0), 2000.0)
    assert flat.exhausted_at is None


def test_history_file_and_cluster_reserve(fleets_dir: Path) -> None:
    fleet = load_fleet(fleets_dir / "small_cluster.yaml")
    rows = forecast_fleet(fleet, load_history(fleets_dir / "history_small_cluster.csv"), failures=1)
    by = {(r.scope, r.resource): r for r in rows}
    h1 = by[("h1", "memory_mib")]
    assert h1.slope_per_day == pytest.approx(150, abs=10)
    # 20000 + 150 d + 800 (daily peak) + q95 ~ 165 >= 32768 -> d ~ 78.7; history ends at ~13.96
    assert h1.days_to_exhaustion == pytest.approx(64.7, abs=2.0)
    cluster = by[("cluster", "memory_mib")]
    assert cluster.capacity == 32768  # h1 + h2 minus the largest (N+1)
    assert cluster.days_to_exhaustion == 0.0  # the HA reserve is already eaten


def test_bad_history(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        load_history(tmp_path / "none.csv")
    bad = tmp_path / "h.csv"
    bad.write_text("timestamp,host,resource,value\n1,h1,disk,3\n")
    with pytest.raises(ValidationError, match="line 2"):
        load_history(bad)


def test_what_if_before_after(fleets_dir: Path) -> None:
    fleet = load_fleet(fleets_dir / "small_cluster.yaml")
    result = what_if(
        fleet, [AddVMs(2, 2, 4096), RemoveHost("h6"), ReserveCapacity("erp", 1, 2, 2048)]
    )
    before, after = result.before, result.after
    assert before.hosts == 6 and after.hosts == 5
    assert after.running_vms == before.running_vms + 2 + 1
    assert after.memory_allocated_pct > before.memory_allocated_pct
    assert result.not_placed == ()
    too_much = what_if(fleet, [AddVMs(40, 4, 8192)])
    assert too_much.not_placed and too_much.notes


def test_growth_rate_from_history_drives_break_date(fleets_dir: Path) -> None:
    """Cluster memory grows 150 + 40 = 190 MiB/day on ~34,250 MiB: 190 x 30.44 / 34250 = 0.169."""
    from datetime import date

    from corral.engines.planning import ha_break_date, make_policy
    from corral.engines.planning.forecast.history import growth_per_month

    history = load_history(fleets_dir / "history_small_cluster.csv")
    rate = growth_per_month(history)
    assert rate == pytest.approx(0.169, abs=0.01)
    fleet = load_fleet(fleets_dir / "vsphere_guide.yaml")
    start = date(2026, 1, 15)
    # slots: 5 VMs, 6 slots after H1 fails: breaks once 5 x (1 + rate)^(d / 30.44) > 6
    broken = ha_break_date(fleet, make_policy("slots"), 1, rate, start)
    assert broken is not None
    days = (broken - start).days
    assert (1 + rate) ** ((days - 1) / 30.44) * 5 <= 6 < (1 + rate) ** (days / 30.44) * 5
