"""HA admission control: hand-checked slot and percentage cases, failover properties."""

from __future__ import annotations

from datetime import date, timedelta
from itertools import combinations
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from corral.engines.planning import VM, Fleet, Host, ha_break_date, load_fleet, make_policy
from corral.engines.planning.ha.failover import FailoverModel
from corral.engines.planning.ha.slots import SlotPolicy
from corral.errors import ValidationError
from tests.planning.invariants import current_placement, violations
from tests.planning.strategies import fleets


@pytest.fixture
def guide(fleets_dir: Path) -> Fleet:
    return load_fleet(fleets_dir / "vsphere_guide.yaml")


def test_slots_vsphere_guide_example(guide: Fleet) -> None:
    """vSphere Availability guide: slot 2 GHz / 2 GB; H1 4, H2 3, H3 3 slots; 1 failure."""
    r = make_policy("slots").evaluate(guide, 1).to_dict()
    assert r["slot"] == {"cpu_mhz": 2000, "memory_mib": 2048}
    assert r["slots_per_host"] == {"H1": 4, "H2": 3, "H3": 3}
    assert r["tolerated_host_failures"] == 1
    assert r["used_slots"] == 5 and r["failover_slots"] == 4 and r["available_slots"] == 1


def test_percentage_vsphere_guide_example(guide: Fleet) -> None:
    """(24000 - 7000) / 24000 = 70.83 % CPU; (21504 - 6144) / 21504 = 71.43 % memory."""
    r = make_policy("percentage", cpu_pct=25, memory_pct=25).evaluate(guide, 1).to_dict()
    assert r["cpu_failover_capacity_pct"] == 70.83
    assert r["memory_failover_capacity_pct"] == 71.43
    assert r["meets_configured_pct"] is True
    assert r["tolerated_host_failures"] == 1  # without H1: 15 GHz / 12 GB >= 7 GHz / 6 GB


def _no_reservations() -> Fleet:
    hosts = tuple(Host(f"h{i}", cores=2, cpu_mhz=2000, memory_mib=8192) for i in range(3))
    vms = tuple(VM(f"v{i}", 1, 1024, host=f"h{i % 3}", memory_overhead_mib=100) for i in range(10))
    return Fleet(hosts, vms)


def test_slots_default_32mhz_and_overhead() -> None:
    """No reservations: CPU slot 32 MHz (vSphere 5+), memory slot = largest overhead (100)."""
    r = make_policy("slots").evaluate(_no_reservations(), 1).to_dict()
    assert r["slot"] == {"cpu_mhz": 32, "memory_mib": 100}
    assert r["slots_per_host"] == {"h0": 81, "h1": 81, "h2": 81}  # min(4000//32, 8192//100)
    assert r["tolerated_host_failures"] == 2


def test_slots_estimated_overhead_when_nothing_declared() -> None:
    fleet = Fleet((Host("h", 4, 2000, 8192),), (VM("v", 2, 4096, host="h"),))
    cpu, mem = make_policy("slots").evaluate(fleet, 0).to_dict()["slot"].values()
    assert (cpu, mem) == (32, 55)  # ceil(16 + 4 x 2 + 0.0075 x 4096) = ceil(54.72)


def test_percentage_defaults_without_reservations() -> None:
    r = make_policy("percentage").evaluate(_no_reservations(), 1).to_dict()
    assert r["cpu_failover_capacity_pct"] == round(100 * (12000 - 320) / 12000, 2)
    assert r["memory_failover_capacity_pct"] == round(100 * (24576 - 1000) / 24576, 2)
    assert r["configured_cpu_failover_pct"] == round(100 / 3, 2)


def test_slot_cap_makes_big_vms_take_several_slots(guide: Fleet) -> None:
    r = SlotPolicy(max_slot_cpu_mhz=1000).evaluate(guide, 1).to_dict()
    assert r["slot"]["cpu_mhz"] == 1000
    assert r["used_slots"] == 7  # VM1 and VM2 take 2 slots each
    assert r["tolerated_host_failures"] == 0  # 10 - 4 = 6 < 7


def test_exact_names_lost_vms_and_domains(fleets_dir: Path) -> None:
    fleet = load_fleet(fleets_dir / "small_cluster.yaml")
    r = make_policy("exact").evaluate(fleet, 2).to_dict()
    assert r["tolerated_host_failures"] == 1
    assert r["failing_scenarios"] == [{"failed_hosts": ["h1", "h2"], "lost_vms": ["hpc1"]}]
    domains = {d["domain"]: d for d in r["failure_domains"]}
    assert domains["san-a"]["single_point_of_failure"] and domains["san-a"]["lost_vms"] == ["hpc1"]
    assert domains["rack2"]["ok"]
    assert r["failover_plan"]["h2"]["hpc1"] == "h1"  # only h1 also has avx512


def test_failover_hosts_policy(fleets_dir: Path) -> None:
    fleet = load_fleet(fleets_dir / "failover_hosts.yaml")
    r = make_policy("failover-hosts").evaluate(fleet, 2).to_dict()
    assert r["failover_hosts"] == ["spare1"]
    assert r["tolerated_host_failures"] == 1
    assert r["vms_not_coming_back"]
    with pytest.raises(ValidationError, match="not in the fleet"):
        make_policy("failover-hosts", hosts=["nope"]).evaluate(fleet, 1)


def test_unknown_policy() -> None:
    with pytest.raises(ValidationError, match="unknown"):
        make_policy("magic")


def test_break_date_by_hand(guide: Fleet) -> None:
    """Slots: 5 VMs, 6 slots after H1 fails; breaks when ceil(5 x 1.05^(d/30.44)) > 6: day 114."""
    start = date(2026, 11, 21)
    broken = ha_break_date(guide, make_policy("slots"), 1, 0.05, start)
    assert broken == start + timedelta(days=114)
    assert ha_break_date(guide, make_policy("slots"), 1, 0.0, start) is None
    assert ha_break_date(guide, make_policy("slots"), 3, 0.05, start) == start


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleet=fleets())
def test_failover_plan_never_uses_failed_host_nor_overloads(fleet: Fleet) -> None:
    model = FailoverModel.build(fleet)
    n = len(fleet.hosts)
    for k in (1, 2):
        for combo in combinations(range(n), k):
            result = model.simulate(combo)
            failed = {fleet.hosts[i].name for i in combo}
            assert not failed & set(result.plan.values())
            placement = {vm: h for vm, h in current_placement(fleet).items() if h not in failed}
            placement.update(result.plan)
            assert violations(fleet, placement, affinity=False) == []  # affinity: a preference here
            victims = {v for v, h in current_placement(fleet).items() if h in failed}
            assert set(result.plan) | set(result.lost) | set(result.unprotected) == victims


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleet=fleets())
def test_combined_single_host_plans_are_valid(fleet: Fleet) -> None:
    """``survives`` proves a pair safe only with a plan that really is valid."""
    model = FailoverModel.build(fleet)
    for combo in combinations(range(len(fleet.hosts)), 2):
        result = model.survives(combo)
        if result is None:
            continue
        failed = {fleet.hosts[i].name for i in combo}
        placement = {vm: h for vm, h in current_placement(fleet).items() if h not in failed}
        placement.update(result.plan)
        assert not failed & set(result.plan.values())
        assert violations(fleet, placement, affinity=False) == []  # affinity: a preference here
        victims = {v for v, h in current_placement(fleet).items() if h in failed}
        assert set(result.plan) | set(result.unprotected) == victims


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleet=fleets())
def test_a_scenarios_answer_does_not_depend_on_the_scenarios_before_it(fleet: Fleet) -> None:
    """Scenarios share the model's heap of hosts and group counts (copied, not rebuilt, for
    10,000 hosts): what one scenario changes must never reach the next."""
    n = len(fleet.hosts)
    combos = [c for k in (1, 2) for c in combinations(range(n), k)]
    reused = FailoverModel.build(fleet)
    in_order = [reused.simulate(c) for c in combos]
    for combo, seen in zip(reversed(combos), reversed(in_order), strict=True):
        assert FailoverModel.build(fleet).simulate(combo) == seen
