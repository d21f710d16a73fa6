"""Drain the least-loaded hosts: any fleet size, few migrations."""

from __future__ import annotations

from corral.engines.planning.consolidation.bounds import host_lower_bound
from corral.engines.planning.consolidation.heuristic import drain_hosts, place_unplaced
from corral.engines.planning.consolidation.migration import order_moves
from corral.engines.planning.consolidation.plan import ConsolidationPlan
from corral.engines.planning.consolidation.strategies.base import ConsolidationStrategy
from corral.engines.planning.model import Fleet
from corral.engines.planning.placement.registry import default_filters, default_weighers
from corral.engines.planning.placement.scheduler import Scheduler
from corral.engines.planning.state import ClusterState


class DrainStrategy(ConsolidationStrategy):
    name = "heuristic"
    description = (
        "Switch off the least-loaded hosts one by one when all their VMs fit on the hosts "
        "that stay on (every placement filter, stacking weighers); only VMs of switched-off "
        "hosts move."
    )

    def plan(self, fleet: Fleet, failures: int) -> ConsolidationPlan:
        state = ClusterState.from_fleet(fleet)
        before = int(state.active_hosts().sum())
        scheduler = Scheduler(default_filters(failures), default_weighers("stack"), explain_limit=0)
        bound = host_lower_bound(fleet, failures)
        unplaced = place_unplaced(state, fleet, scheduler)
        drain_hosts(state, scheduler, bound.hosts, failures)
        target = {vm: state.host_names[h] for vm, h in state.placement.items()}
        on = ~state.disabled
        notes: tuple[str, ...] = ()
        if bound.hosts > len(fleet.hosts):
            notes = (
                f"No placement meets the N+{failures} reserve with these hosts; add capacity.",
            )
        return ConsolidationPlan(
            method="heuristic-drain",
            active_hosts_before=before,
            active_hosts_after=int(on.sum()),
            lower_bound=bound,
            target=target,
            schedule=order_moves(ClusterState.from_fleet(fleet), target),
            hosts_to_power_off=tuple(
                state.host_names[i] for i in range(state.n_hosts) if not on[i]
            ),
            unplaced=tuple(unplaced),
            notes=notes,
        )
