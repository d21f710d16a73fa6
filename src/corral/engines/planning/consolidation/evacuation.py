"""Maintenance-mode evacuation: move every VM off some hosts without overloading receivers.

VMs are placed one by one (hardest first) with every placement filter against
a state where the evacuated hosts are disabled and earlier moves are already
counted, so each move in the returned order is safe when it runs. Members of
an affinity group move together to one host, or all stay and are reported.
"""

from __future__ import annotations

from collections.abc import Sequence

from corral.engines.planning.consolidation.plan import EvacuationPlan, MigrationSchedule, Move
from corral.engines.planning.model import VM, Fleet
from corral.engines.planning.placement.outcome import Outcome, Placed
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
    for unit in _units(request_order(leaving)):
        moves, failed = _move_unit(state, scheduler, unit)
        if failed is None:
            steps += moves
            continue
        for m in reversed(moves):  # an affinity group moves whole or not at all
            state.move(m.vm, state.index[m.source or m.target])
        unplaced += [vm.name for vm in unit]
        counts = failed.rejections.counts
        reasons[failed.vm] = ", ".join(f"{k}: {n} hosts" for k, n in counts.items())
    return EvacuationPlan(tuple(hosts), MigrationSchedule(tuple(steps)), tuple(unplaced), reasons)


def _units(vms: list[VM]) -> list[list[VM]]:
    """VMs in order, members of one affinity group gathered behind the first of them."""
    units: list[list[VM]] = []
    by_group: dict[str, list[VM]] = {}
    for vm in vms:
        unit = next((by_group[g] for g in vm.affinity if g in by_group), None)
        if unit is None:
            unit = []
            units.append(unit)
        unit.append(vm)
        for g in vm.affinity:
            by_group.setdefault(g, unit)
    return units


def _move_unit(
    state: ClusterState, scheduler: Scheduler, unit: list[VM]
) -> tuple[list[Move], Outcome | None]:
    """Move every VM of ``unit``; stops at the first that finds no host and returns it."""
    moves: list[Move] = []
    for vm in unit:
        outcome = scheduler.decide(state, vm)
        if not isinstance(outcome, Placed):
            return moves, outcome
        src = state.host_names[state.placement[vm.name]]
        state.move(vm.name, state.index[outcome.host])
        moves.append(Move(vm.name, src, outcome.host))
    return moves, None
