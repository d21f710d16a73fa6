"""The simulator reproduces CloudSim 3.0.3's published PlanetLab runs (the validation).

Tolerances are what the reproduction achieves on every day we checked, with a margin:
energy and migrations within a few percent, SLA metrics a little looser (they are products
of small fractions and CloudSim prints PDM with two decimals).
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import pytest

from corral.engines.simulation import (
    energy_lower_bound_kwh,
    planetlab_host_types,
    planetlab_vm_types,
)
from corral.engines.simulation.model import SimulationResult, Workload


def published(shared_data: Path, day: str, policy: str) -> dict[str, str]:
    path = shared_data / "published-results" / "cloudsim-3.0.3-planetlab-baselines.csv"
    with path.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row["day"] == day and row["policy"] == policy:
                return row
    raise AssertionError(f"no published row for {day} {policy}")


@pytest.mark.parametrize(
    ("policy", "label"), [("lr-mmt-1.2", "LR-MMT-1.2"), ("thr-mmt-0.8", "THR-MMT-0.8")]
)
@pytest.mark.slow
def test_reproduces_published_day(
    shared_data: Path, run_20110303: Callable[[str], SimulationResult], policy: str, label: str
) -> None:
    ref = published(shared_data, "20110303", label)
    result = run_20110303(policy)

    assert result.energy_kwh == pytest.approx(float(ref["energy_kwh"]), rel=0.02)
    assert result.migrations == pytest.approx(int(ref["vm_migrations"]), rel=0.05)
    assert result.slatah_pct == pytest.approx(float(ref["slatah_pct"]), rel=0.06)
    assert result.slav * 1e5 == pytest.approx(float(ref["slav_x1e-5"]), rel=0.12)
    assert result.esv * 1e3 == pytest.approx(float(ref["esv_x1e-3"]), rel=0.12)
    assert result.host_shutdowns == pytest.approx(int(ref["host_shutdowns"]), rel=0.05)
    assert result.steps == 287


def test_lower_bound_matches_readme(day_20110303: Workload) -> None:
    best = planetlab_host_types()[1]
    bound = energy_lower_bound_kwh(day_20110303, planetlab_vm_types(), best)
    assert bound == pytest.approx(118.1, abs=0.1)
