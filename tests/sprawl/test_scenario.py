"""The seed's 150-VM figure as a seeded scenario through the real engines."""

from __future__ import annotations

import pytest

from corral.engines.costing import CostModel
from corral.engines.sprawl import Category
from corral.engines.sprawl.scenario import (
    SOURCES,
    ScenarioAssumptions,
    build_fleet,
    describe,
    run_scenario,
)


def test_scenario_is_deterministic_per_seed(default_model: CostModel) -> None:
    a = run_scenario(default_model, vms=60, seed=7).summary()
    b = run_scenario(default_model, vms=60, seed=7).summary()
    assert a == b


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_150_vms_waste_lands_in_the_seed_range(default_model: CostModel, seed: int) -> None:
    s = run_scenario(default_model, vms=150, seed=seed).summary()
    assert 50_000 <= s["waste_yearly"] <= 150_000
    assert s["by_category"][Category.idle.value]["count"] > 0


def test_fleet_follows_the_assumed_rates() -> None:
    fleet = build_fleet(600, seed=3)
    off = sum(1 for vm in fleet.vms if not vm.powered_on) / 600
    assert abs(off - ScenarioAssumptions().powered_off_share) < 0.04
    assert len(fleet.hosts) == 40  # 600 / 15


def test_every_assumption_has_a_stated_source() -> None:
    rows = describe(ScenarioAssumptions())
    assert {r["assumption"] for r in rows} == set(SOURCES)
    assert all(r["source"] for r in rows)
