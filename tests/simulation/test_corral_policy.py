"""Corral's policy: its promises on any fleet, and the PlanetLab targets it is measured against."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.engines.simulation import planetlab_fleet, planetlab_vm_types
from corral.engines.simulation.engine import HISTORY, fleet_arrays
from corral.engines.simulation.model import SimulationResult, Workload
from corral.engines.simulation.policies.corral import CorralPolicy
from corral.engines.simulation.view import FleetArrays, PlanningView


def random_view(seed: int, hosts: int, vms: int) -> PlanningView:
    rng = np.random.default_rng(seed)
    day = Workload(
        "t", tuple(map(str, range(vms))), rng.integers(0, 4, vms), rng.random((vms, 289))
    )
    fleet: FleetArrays = fleet_arrays(planetlab_fleet(hosts), planetlab_vm_types(), day)
    history = rng.random((vms, HISTORY)) * rng.random((vms, 1))
    lists: list[list[int]] = [[] for _ in range(hosts)]
    for vm, host in enumerate(rng.integers(0, hosts, vms)):
        lists[int(host)].append(vm)
    requested = history[:, 0] * fleet.vm_mips
    used = np.array([requested[v].sum() for v in lists]) / fleet.host_capacity
    return PlanningView(
        fleet,
        lists,
        requested,
        np.minimum(used, 1.0),
        step=5,
        time=1500.1,
        history=history,
        history_len=np.full(vms, HISTORY),
    )


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 12), st.integers(1, 40))
def test_plan_never_fills_a_receiver_past_target(seed: int, hosts: int, vms: int) -> None:
    view = random_view(seed, hosts, vms)
    sources = {vm: h for h, listed in enumerate(view.lists) for vm in listed}
    policy = CorralPolicy()
    plan = policy.optimize(view)
    moved = [vm for vm, _ in plan]
    assert len(moved) == len(set(moved)), "a VM moves at most once per step"
    cap = view.fleet.host_capacity
    for vm, target in plan:
        assert target != sources[vm]
        assert view.host_sum("peak")[target] <= policy.target * cap[target] + 1e-6
    assert not {t for _, t in plan} & {sources[vm] for vm in moved}, "no host gives and receives"


@pytest.mark.slow
def test_corral_meets_the_planetlab_targets_on_one_day(
    run_20110303: Callable[[str], SimulationResult],
) -> None:
    lr = run_20110303("lr-mmt-1.2")
    corral = run_20110303("corral")
    assert corral.energy_kwh <= 1.2 * corral.energy_lower_bound_kwh
    assert corral.slav <= lr.slav
    assert corral.migrations <= lr.migrations / 2
