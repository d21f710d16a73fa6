"""Placement: filters say why, weighers choose, outcomes are typed; properties hold."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corral.engines.planning import (
    VM,
    Fleet,
    Placed,
    Unschedulable,
    UnschedulableFreeingWouldHelp,
    load_fleet,
    place,
)
from corral.engines.planning.placement.registry import FILTERS, WEIGHERS
from corral.engines.planning.placement.scheduler import Scheduler
from corral.engines.planning.state import ClusterState
from tests.planning.invariants import current_placement, violations
from tests.planning.strategies import fleets, vms


def test_registry_plugins_are_described() -> None:
    expected = {
        "cpu_compat",
        "cores",
        "affinity",
        "anti_affinity",
        "capacity",
        "ha_reserve",
        "image",
    }
    assert set(FILTERS) == expected
    assert set(WEIGHERS) == {"free_capacity", "balance", "peak_correlation"}
    for cls in [*FILTERS.values(), *WEIGHERS.values()]:
        assert cls.description


def test_outcomes_are_typed_with_reasons(fleets_dir: Path) -> None:
    fleet = load_fleet(fleets_dir / "small_cluster.yaml")
    request = [
        VM("huge", vcpus=32, memory_mib=1024),  # more vCPUs than any host has threads
        VM("fat", vcpus=2, memory_mib=30000),  # fits an empty big host only
        VM("avx", vcpus=2, memory_mib=1024, required_features=frozenset({"avx512"})),
    ]
    result = place(fleet, request, atomic=False)
    by_vm = {o.vm: o for o in result.outcomes}
    assert isinstance(by_vm["huge"], Unschedulable)
    assert by_vm["huge"].rejections.counts == {"cores": 6}
    assert isinstance(by_vm["fat"], UnschedulableFreeingWouldHelp)
    assert set(by_vm["fat"].candidates) == {"h1", "h2", "h3", "h4"}
    assert all("memory_mib needs 30000" in r.reason for r in by_vm["fat"].rejections.reasons)
    avx = by_vm["avx"]
    assert isinstance(avx, Placed) and avx.host in {"h1", "h2"}
    assert avx.rejections.counts["cpu_compat"] == 4


def test_anti_affinity_rejection_reason(fleets_dir: Path) -> None:
    fleet = load_fleet(fleets_dir / "small_cluster.yaml")
    out = place(fleet, [VM("sql3", 1, 1024, anti_affinity=("sql",))]).outcomes[0]
    assert isinstance(out, Placed) and out.host not in {"h1", "h3"}
    reasons = {r.host: r for r in out.rejections.reasons}
    assert reasons["h1"].filter == "anti_affinity" and "sql" in reasons["h1"].reason


def test_affinity_follows_group(fleets_dir: Path) -> None:
    fleet = load_fleet(fleets_dir / "small_cluster.yaml")
    out = place(fleet, [VM("db1", 1, 1024, affinity=("webapp",))]).outcomes[0]
    assert isinstance(out, Placed) and out.host == "h2"


def test_spread_and_stack_choose_differently(fleets_dir: Path) -> None:
    fleet = load_fleet(fleets_dir / "small_cluster.yaml")
    vm = VM("n", 1, 1024)
    spread = place(fleet, [vm], Scheduler.default("spread")).outcomes[0]
    stack = place(fleet, [vm], Scheduler.default("stack")).outcomes[0]
    assert isinstance(spread, Placed) and isinstance(stack, Placed)
    state = ClusterState.from_fleet(fleet)
    free = {n: state.free[i][1] / state.cap[i][1] for n, i in state.index.items()}
    assert free[spread.host] > free[stack.host]


def test_peak_correlation_keeps_day_peaks_apart() -> None:
    fleet = load_fleet(Path(__file__).parents[1] / "fixtures" / "fleets" / "peaks.yaml")
    out = place(fleet, [fleet.vm("new-day")]).outcomes[0]
    assert isinstance(out, Placed) and out.host == "night-host"


def test_atomic_request_changes_nothing_on_failure(fleets_dir: Path) -> None:
    fleet = load_fleet(fleets_dir / "small_cluster.yaml")
    result = place(fleet, [VM("a", 1, 512), VM("b", 64, 512)], atomic=True)
    assert not result.all_placed
    assert "a" not in result.state.placement


def test_ha_reserve_filter_blocks_when_reserve_would_break(fleets_dir: Path) -> None:
    fleet = load_fleet(fleets_dir / "vsphere_guide.yaml")  # 21504 MiB, largest host 9216
    big = VM("big", 1, 7000)
    with_reserve = place(fleet, [big], Scheduler.default(ha_failures=1)).outcomes[0]
    without = place(fleet, [big], Scheduler.default(ha_failures=0)).outcomes[0]
    assert isinstance(with_reserve, UnschedulableFreeingWouldHelp)
    assert with_reserve.rejections.counts.get("ha_reserve") == 1
    assert isinstance(without, Placed)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    fleet=fleets(), request=vms("new", max_size=10), strategy=st.sampled_from(["spread", "stack"])
)
def test_placement_never_overcommits_nor_breaks_constraints(
    fleet: Fleet, request: list[VM], strategy: str
) -> None:
    result = place(fleet, request, Scheduler.default(strategy), atomic=False)
    placement = current_placement(fleet)
    placement.update({o.vm: o.host for o in result.outcomes if isinstance(o, Placed)})
    assert violations(fleet, placement, request) == []
    for o in result.outcomes:
        if not isinstance(o, Placed):
            assert sum(o.rejections.counts.values()) == len(fleet.hosts)
