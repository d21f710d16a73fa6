"""Energy and SLA accounting on tiny fleets where the right answer can be written down."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.engines.simulation import simulate
from corral.engines.simulation.accounting import IN, NORMAL, OUT, Placement, snapshot
from corral.engines.simulation.engine import fleet_arrays
from corral.engines.simulation.model import (
    IntArray,
    VmType,
    Workload,
    planetlab_host_types,
)
from corral.engines.simulation.policies.base import ConsolidationPolicy, Migration
from corral.engines.simulation.view import PlanningView

G5 = planetlab_host_types()[1]
VM = VmType("test", 1000.0, 870)  # migrates in 870 * 8 / 500 = 13.92 s
LAST_EVENT = 0.1 + 287 * 300  # CloudSim's last update of the day
FIRST_EVENT = 300.1


class Scripted(ConsolidationPolicy):
    """Everything on host 0; optionally one migration at step 1."""

    family = "scripted"
    summary = "test policy"

    def __init__(self, moves: list[Migration]) -> None:
        self.moves = moves

    def initial_placement(self, view: PlanningView) -> IntArray:
        return np.zeros(len(view.requested), dtype=np.int64)

    def optimize(self, view: PlanningView) -> list[Migration]:
        return self.moves if view.step == 1 else []


def constant_day(vms: int, share: float) -> Workload:
    util = np.full((vms, 289), share)
    return Workload("test", tuple(f"vm{i}" for i in range(vms)), np.zeros(vms, np.int64), util)


def test_energy_of_a_steady_host_is_its_power_times_time() -> None:
    result = simulate((G5, G5), (VM,), constant_day(2, 0.5), Scripted([]))
    load = 2 * 500.0 / G5.mips  # 18.8 % of a G5
    watts = 97.0 + (101.0 - 97.0) * (load * 10 - 1)  # between the 10 % and 20 % points
    seconds = LAST_EVENT - FIRST_EVENT  # the first interval starts from switched-off hosts
    assert result.energy_kwh == pytest.approx(watts * seconds / 3.6e6, rel=1e-9)
    assert result.migrations == 0
    assert result.slatah_pct == 0.0
    assert result.pdm_pct == 0.0


def test_one_migration_costs_the_target_sla_time_and_the_vm_ten_percent() -> None:
    result = simulate((G5, G5), (VM,), constant_day(2, 0.5), Scripted([(0, 1)]))
    duration = 870 * 8 / 500
    active = 2 * (LAST_EVENT - FIRST_EVENT)
    assert result.migrations == 1
    assert result.slatah_pct == pytest.approx(100 * duration / active, rel=1e-6)
    requested = 2 * 500.0 * (LAST_EVENT - FIRST_EVENT)
    assert result.pdm_pct == pytest.approx(100 * 0.1 * 500.0 * duration / requested, rel=1e-6)


def test_idle_vms_are_retired_like_cloudsim() -> None:
    day = constant_day(2, 0.5)
    day.util[1, 5:] = 0.0
    result = simulate((G5, G5), (VM,), day, Scripted([]))
    assert result.vms_removed_idle == 1


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 2), st.floats(0, 2500), st.sampled_from([NORMAL, OUT, IN])),
        min_size=1,
        max_size=12,
    )
)
def test_no_host_is_ever_given_more_than_its_capacity(rows: list[tuple[int, float, int]]) -> None:
    hosts = (*planetlab_host_types(), G5)
    day = constant_day(len(rows), 0.0)
    fleet = fleet_arrays(hosts, (VM,), day)
    placement = Placement(
        np.arange(len(rows), dtype=np.int64),
        np.array([r[0] for r in rows], dtype=np.int64),
        np.array([r[2] for r in rows], dtype=np.int64),
    )
    requested = np.array([r[1] for r in rows])
    snap = snapshot(fleet, placement, requested)
    assert np.all(snap.host_used <= fleet.host_capacity + 1e-6)
    own = placement.kind != IN
    assert np.all(snap.vm_allocated[own] <= requested[own] + 1e-9)
