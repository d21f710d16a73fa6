"""Rebalancing (DRS-like): a few migrations that lower the hottest hosts' load.

"Best placement" goes stale as VMs come and go, so the hottest host (highest
of its vCPU share, memory share and, with utilization profiles, its peak-hour
busy share) gives one VM at a time to the host that placement would choose for
it with spread weighers (all filters apply, the hot host excluded), as long as
the move lowers the hotter of the two hosts. Stops at ``max_migrations`` or
when no move helps; the moves come back in a safe order. VMs in affinity
groups stay put (their group would have to move as one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from corral.engines.planning.consolidation.migration import order_moves
from corral.engines.planning.consolidation.plan import MigrationSchedule
from corral.engines.planning.model import VM, Fleet
from corral.engines.planning.placement.outcome import Placed
from corral.engines.planning.placement.scheduler import Scheduler
from corral.engines.planning.state import MEM, VCPU, ClusterState, FloatArray


@dataclass(frozen=True)
class RebalancePlan:
    schedule: MigrationSchedule
    max_load_before: float
    max_load_after: float
    spread_before: float
    spread_after: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "migrations": len(self.schedule.steps),
            "max_load_before": round(self.max_load_before, 4),
            "max_load_after": round(self.max_load_after, 4),
            "load_stddev_before": round(self.spread_before, 4),
            "load_stddev_after": round(self.spread_after, 4),
            "steps": [m.to_dict() for m in self.schedule.steps],
            "schedule_complete": self.schedule.complete,
        }


def host_load(state: ClusterState) -> FloatArray:
    """Per host: the largest of vCPU share, memory share and peak-hour busy share."""
    share = state.used[:, [VCPU, MEM]] / np.maximum(state.cap[:, [VCPU, MEM]], 1e-9)
    peak = state.host_profile.max(axis=1) / np.maximum(state.threads, 1.0)
    return np.asarray(np.maximum(share.max(axis=1), peak), dtype=np.float64)


def rebalance(fleet: Fleet, max_migrations: int = 10) -> RebalancePlan:
    """Plan up to ``max_migrations`` moves that cool the hottest hosts."""
    start = ClusterState.from_fleet(fleet)
    state = start.copy()
    active = start.active_hosts()
    before = host_load(start)
    scheduler = Scheduler.default("spread", ha_failures=0)
    scheduler.explain_limit = 0
    state.disabled |= ~active  # rebalance among the hosts already on
    for _ in range(max_migrations):
        if not _one_move(state, scheduler):
            break
    target = {vm: state.host_names[h] for vm, h in state.placement.items()}
    after = host_load(state)
    on = active
    return RebalancePlan(
        schedule=order_moves(start, target),
        max_load_before=float(before[on].max()) if on.any() else 0.0,
        max_load_after=float(after[on].max()) if on.any() else 0.0,
        spread_before=float(before[on].std()) if on.any() else 0.0,
        spread_after=float(after[on].std()) if on.any() else 0.0,
    )


def _one_move(state: ClusterState, scheduler: Scheduler) -> bool:
    load = np.where(state.disabled, -1.0, host_load(state))
    if load.size == 0:  # a fleet without hosts: nothing to cool
        return False
    hot = int(np.argmax(load))
    movable = [v for v in state.vms_on(hot) if not v.affinity]  # groups move together, not here
    for vm in sorted(movable, key=lambda v: (v.memory_mib, v.vcpus)):
        if _try(state, scheduler, vm, hot, float(load[hot])):
            return True
    return False


def _try(state: ClusterState, scheduler: Scheduler, vm: VM, hot: int, hot_load: float) -> bool:
    state.disabled[hot] = True
    outcome = scheduler.decide(state, vm)
    state.disabled[hot] = False
    if not isinstance(outcome, Placed):
        return False
    dst = state.index[outcome.host]
    state.move(vm.name, dst)
    load = host_load(state)
    if max(load[hot], load[dst]) < hot_load - 1e-9:
        return True
    state.move(vm.name, hot)
    return False
