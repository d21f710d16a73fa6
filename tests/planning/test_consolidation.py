"""Consolidation, evacuation, migration order, lower bound and bulk packing."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corral.engines.planning import (
    VM,
    Fleet,
    Host,
    Settings,
    consolidate,
    evacuate,
    host_lower_bound,
    load_fleet,
    order_moves,
)
from corral.engines.planning.consolidation.bulk import pack
from corral.engines.planning.state import ClusterState
from tests.planning.invariants import current_placement, host_load, violations
from tests.planning.strategies import fleets


def replay(fleet: Fleet, steps: list[dict[str, object]] | tuple[object, ...]) -> list[str]:
    """Apply moves one by one; collect any violation after any step (affinity: at the end)."""
    placement = current_placement(fleet)
    bad: list[str] = []
    for step in steps:
        vm, target = (step["vm"], step["to"]) if isinstance(step, dict) else (step.vm, step.target)  # type: ignore[attr-defined]
        placement[str(vm)] = str(target)
        bad += violations(fleet, placement, affinity=False)  # a group moves one VM at a time
    return bad + violations(fleet, placement)


def test_lower_bound_by_hand() -> None:
    hosts = tuple(Host(f"h{i}", 4, 2000, 8192) for i in range(6))  # 16 vCPUs each at ratio 4
    vms = tuple(VM(f"v{i}", 4, 3000, host="h0" if i < 2 else f"h{i % 6}") for i in range(8))
    fleet = Fleet(hosts, vms, Settings(ha_host_failures=1))
    lb = host_lower_bound(fleet, 1)
    assert lb.by_resource == {"vcpus": 2 + 1, "memory_mib": 3 + 1}  # 32/16, 24000/8192 -> 3
    assert lb.hosts == 4
    grouped = fleet.with_vms([replace(v, anti_affinity=("g",)) for v in vms])
    assert host_lower_bound(grouped, 1).anti_affinity == 8  # 8 members, one per host


def test_small_cluster_exact_matches_bound(fleets_dir: Path) -> None:
    fleet = load_fleet(fleets_dir / "small_cluster.yaml")
    plan = consolidate(fleet, "exact", time_limit_s=20)
    assert plan.method == "exact-cpsat" and plan.optimal
    assert plan.active_hosts_after == plan.lower_bound.hosts == 4
    assert plan.schedule.complete
    assert replay(fleet, plan.schedule.steps) == []
    heuristic = consolidate(fleet, "heuristic")
    assert heuristic.active_hosts_after >= plan.active_hosts_after
    assert plan.migrations <= heuristic.migrations or heuristic.active_hosts_after > 4


def test_cycle_needs_a_temporary_hop() -> None:
    """A on h1 and B on h2 swap; both hosts are full, so one VM must hop via h3."""
    hosts = (Host("h1", 2, 2000, 4096), Host("h2", 2, 2000, 4096), Host("h3", 2, 2000, 4096))
    vms = (VM("A", 1, 4096, host="h1"), VM("B", 1, 4096, host="h2"))
    fleet = Fleet(hosts, vms)
    schedule = order_moves(ClusterState.from_fleet(fleet), {"A": "h2", "B": "h1"})
    assert schedule.complete
    assert any(m.temporary and m.target == "h3" for m in schedule.steps)
    assert replay(fleet, schedule.steps) == []
    no_room = fleet.with_hosts(hosts[:2])
    blocked = order_moves(ClusterState.from_fleet(no_room), {"A": "h2", "B": "h1"})
    assert not blocked.complete and set(blocked.blocked) == {"A", "B"}


def test_evacuation_empties_host_without_overload(fleets_dir: Path) -> None:
    fleet = load_fleet(fleets_dir / "small_cluster.yaml")
    plan = evacuate(fleet, ["h2"])
    assert plan.complete
    moved = {m.vm for m in plan.schedule.steps}
    assert moved == {"hpc1", "web1", "app1"}
    assert {m.target for m in plan.schedule.steps if m.vm in {"web1", "app1"}} == {"h4"} or len(
        {m.target for m in plan.schedule.steps if m.vm in {"web1", "app1"}}
    ) == 1
    assert replay(fleet, plan.schedule.steps) == []


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleet=fleets(), mode=st.sampled_from(["heuristic", "exact"]))
def test_consolidation_valid_at_every_step(fleet: Fleet, mode: str) -> None:
    plan = consolidate(fleet, mode, time_limit_s=5)
    feasible = plan.lower_bound.hosts <= len(fleet.hosts)
    assert plan.active_hosts_after >= plan.lower_bound.hosts or not feasible or not fleet.vms
    if plan.schedule.complete:
        assert replay(fleet, plan.schedule.steps) == []
        final = current_placement(fleet)
        final.update(plan.target)
        assert violations(fleet, final) == []


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleet=fleets(), data=st.data())
def test_evacuation_never_overloads(fleet: Fleet, data: st.DataObject) -> None:
    host = data.draw(st.sampled_from([h.name for h in fleet.hosts]))
    plan = evacuate(fleet, [host])
    assert all(m.target != host for m in plan.schedule.steps)
    assert replay(fleet, plan.schedule.steps) == []
    left = {v.name for v in fleet.vms if v.host == host and v.running}
    assert {m.vm for m in plan.schedule.steps} | set(plan.unplaced) == left


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleet=fleets(ha=1))
def test_bulk_pack_valid_and_above_bound(fleet: Fleet) -> None:
    result = pack(fleet)
    assert violations(fleet, result.target) == []
    assert not set(result.reserve_hosts) & set(result.target.values())
    reserve = {h.name: h for h in fleet.hosts if h.name in result.reserve_hosts}
    load = host_load(fleet, result.target)
    for r in reserve.values():  # any loaded host's VMs fit on any reserve host
        ratio = fleet.settings
        for cpu, mem, res in load.values():
            assert cpu <= r.threads * ratio.cpu_allocation_ratio
            assert mem <= r.memory_mib * ratio.ram_allocation_ratio and res <= r.cpu_capacity_mhz
    if not result.unplaced:
        assert result.hosts_with_reserve >= result.lower_bound.hosts


def test_rebalance_cools_the_peak_host(fleets_dir: Path) -> None:
    from corral.engines.planning.consolidation.rebalance import rebalance

    fleet = load_fleet(fleets_dir / "hotspot.yaml")
    plan = rebalance(fleet, max_migrations=5)
    assert plan.max_load_before == pytest.approx(0.7125)
    assert plan.max_load_after == pytest.approx(0.475)
    (move,) = plan.schedule.steps
    assert (move.source, move.target) == ("a", "b") and move.vm.startswith("d")
    small = load_fleet(fleets_dir / "small_cluster.yaml")
    kept = rebalance(small, max_migrations=5)  # h2's only helpful move would split webapp
    assert all(m.vm not in {"web1", "app1"} for m in kept.schedule.steps)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleet=fleets())
def test_rebalance_never_worsens_nor_breaks(fleet: Fleet) -> None:
    from corral.engines.planning.consolidation.rebalance import rebalance

    plan = rebalance(fleet, max_migrations=4)
    assert plan.max_load_after <= plan.max_load_before + 1e-9
    assert len(plan.schedule.steps) <= 4 or any(m.temporary for m in plan.schedule.steps)
    if plan.schedule.complete:
        assert replay(fleet, plan.schedule.steps) == []


def test_strategies_registered_and_described() -> None:
    from corral.engines.planning.consolidation.engine import MODES
    from corral.engines.planning.consolidation.strategies.registry import STRATEGIES

    assert set(STRATEGIES) == {"exact", "heuristic", "repack"}
    assert ("auto", *STRATEGIES) == MODES
    assert all(cls.description for cls in STRATEGIES.values())
