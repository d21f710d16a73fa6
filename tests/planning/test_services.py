"""Planning, HA and simulation services: typed results from plain inputs, as the API calls them."""

from __future__ import annotations

import dataclasses
from datetime import date
from pathlib import Path

import pytest

from corral.engines.planning import ConsolidationPlan, EvacuationPlan, RebalancePlan, WhatIfResult
from corral.errors import NotFoundError, ValidationError
from corral.services import ha, planning, simulation
from corral.services.fleet import read_fleet_file
from corral.services.planning import (
    AddVMs,
    ConsolidationMode,
    NewVM,
    PlacementStatus,
    PlacementStrategy,
    RemoveHost,
)

FLEETS = Path(__file__).resolve().parents[1] / "fixtures" / "fleets"


def _fleet(name: str = "small_cluster.yaml") -> planning.Fleet:
    return read_fleet_file(FLEETS / name).fleet


def _frozen(value: object) -> bool:
    params = getattr(type(value), "__dataclass_params__", None)
    return params is not None and params.frozen


def test_place_gives_typed_outcomes() -> None:
    report = planning.place_vms(
        _fleet(),
        new=[NewVM("big", 64, 1024), NewVM("x", 2, 2048)],
        strategy=PlacementStrategy.stack,
        atomic=False,
    )
    assert _frozen(report) and all(_frozen(o) for o in report.outcomes)
    by_vm = {o.vm: o for o in report.outcomes}
    assert by_vm["x"].status is PlacementStatus.placed and by_vm["x"].host
    assert by_vm["big"].status is not PlacementStatus.placed and by_vm["big"].host is None
    assert by_vm["big"].rejections.counts and not report.all_placed


def test_place_refuses_a_placed_vm_and_an_empty_request() -> None:
    fleet = _fleet()
    with pytest.raises(ValidationError, match="already runs on"):
        planning.place_vms(fleet, ["sql1"])
    with pytest.raises(NotFoundError):
        planning.place_vms(fleet, ["no-such-vm"])


def test_plans_are_the_engines_typed_plans() -> None:
    fleet = _fleet()
    plan = planning.consolidate(fleet, ConsolidationMode.heuristic)
    assert isinstance(plan, ConsolidationPlan) and plan.active_hosts_after <= len(fleet.hosts)
    assert isinstance(planning.rebalance(_fleet("hotspot.yaml"), 1), RebalancePlan)
    evac = planning.evacuate(fleet, ["h2"])
    assert isinstance(evac, EvacuationPlan)
    assert all(m.source == "h2" for m in evac.schedule.steps if not m.temporary)
    with pytest.raises(NotFoundError):
        planning.evacuate(fleet, ["nope"])
    result = planning.whatif(fleet, [AddVMs(3, 2, 4096), RemoveHost("h6")])
    assert isinstance(result, WhatIfResult) and result.after.hosts == result.before.hosts - 1


def test_forecast_report() -> None:
    report = planning.forecast(_fleet(), FLEETS / "history_small_cluster.csv", failures=1)
    assert report.failures == 1 and report.exhaustions
    assert {e.resource for e in report.exhaustions} == {"cpu_mhz", "memory_mib"}


def test_ha_check_with_a_growth_projection() -> None:
    result = ha.check(
        _fleet("vsphere_guide.yaml"), "slots", 1, growth_per_month=0.05, as_of=date(2026, 11, 21)
    )
    assert _frozen(result) and result.report.policy == "slots"
    growth = result.growth
    assert growth is not None and growth.source is ha.GrowthSource.given
    assert growth.start == date(2026, 11, 21)
    assert growth.breaks_on is None or growth.breaks_on >= growth.start
    assert "failover-hosts" in ha.policies()
    with pytest.raises(ValidationError):
        ha.check(_fleet(), "magic")


def test_ha_growth_from_history() -> None:
    result = ha.check(_fleet(), "exact", 1, history=FLEETS / "history_small_cluster.csv")
    assert result.growth is not None and result.growth.source is ha.GrowthSource.history_trend


def test_simulation_policies_are_typed() -> None:
    found = {p.family: p for p in simulation.policies()}
    assert [q.name for q in found["lr-mmt"].parameters] == ["safety"]
    assert dataclasses.asdict(found["lr-mmt"].parameters[0])["default"] == 1.2


def test_simulation_run_and_days(shared_data: Path) -> None:
    planetlab = shared_data / "planetlab"
    assert "20110303" in simulation.days(planetlab)
    result = simulation.run(planetlab, "thr-mmt-0.8", day="20110303", hosts=800)
    assert result.policy.startswith("thr-mmt") and result.day == "20110303"
    assert result.energy_kwh > result.energy_lower_bound_kwh > 0
