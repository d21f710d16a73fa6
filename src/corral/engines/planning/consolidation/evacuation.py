"""Maintenance-mode evacuation: move every VM off some hosts without overloading receivers.

VMs are placed one by one (hardest first) with every placement filter against
a state where the evacuated hosts are disabled and earlier moves are already
counted, so each move in the returned order is safe when it runs.
"""

from __future__ import annotations

from collections.abc import Sequence

from corral.engines.planning.consolidation.plan import EvacuationPlan, MigrationSchedule, Move
from corral.engines.planning.model import Fleet
from corral.engines.planning.placement.outcome import Placed
from corral.engines.planning.placement.registry import default_filters, default_weighers
from corral.engines.planning.placement.scheduler import Scheduler, request_order
from corral.engines.planning.state import ClusterState


def evacuate(
    fleet: Fleet, hosts: Sequence[str], *, keep_ha_reserve: bool = False, strategy: str = "spread"
) -> EvacuationPlan:
    """Plan moves that empty ``hosts``; the N+K reserve is kept only if asked."""
    state = ClusterState.from_fleet(fleet)
    idx = [state.index[fleet.host(h).name] for h in hosts]
    filters = default_filters(None if keep_ha_reserve else 0)
    scheduler = Scheduler(filters, default_weighers(strategy), explain_limit=3)
    for i in idx:
        state.disabled[i] = True
    steps: list[Move] = []
    unplaced: list[str] = []
    reasons: dict[str, str] = {}
    leaving = [vm for i in idx for vm in state.vms_on(i)]
    for vm in request_order(leaving):
        outcome = scheduler.decide(state, vm)
        if isinstance(outcome, Placed):
            src = state.host_names[state.placement[vm.name]]
            state.move(vm.name, state.index[outcome.host])
            steps.append(Move(vm.name, src, outcome.host))
        else:
            unplaced.append(vm.name)
            counts = outcome.rejections.counts
            reasons[vm.name] = ", ".join(f"{k}: {n} hosts" for k, n in counts.items())
    return EvacuationPlan(tuple(hosts), MigrationSchedule(tuple(steps)), tuple(unplaced), reasons)
