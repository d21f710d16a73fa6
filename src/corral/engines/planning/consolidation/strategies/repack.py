"""Repack every VM afresh with the bulk packer: fewest hosts, many migrations."""

from __future__ import annotations

from corral.engines.planning.consolidation.bulk import pack
from corral.engines.planning.consolidation.migration import order_moves
from corral.engines.planning.consolidation.plan import ConsolidationPlan
from corral.engines.planning.consolidation.strategies.base import ConsolidationStrategy
from corral.engines.planning.model import Fleet
from corral.engines.planning.state import ClusterState


class RepackStrategy(ConsolidationStrategy):
    name = "repack"
    description = (
        "Ignore where VMs run, pack them all with the bulk packer and keep K empty standby "
        "hosts for the N+K reserve; for large fleets where hosts matter more than moves."
    )

    def plan(self, fleet: Fleet, failures: int) -> ConsolidationPlan:
        result = pack(fleet, failures)
        start = ClusterState.from_fleet(fleet)
        on = set(result.target.values()) | set(result.reserve_hosts)
        notes = [f"{len(result.reserve_hosts)} empty standby host(s) kept for the N+K reserve."]
        if result.unplaced:
            notes.append(f"{len(result.unplaced)} VMs found no host in the repack; they stay put.")
        if result.reserve_incompatible:
            notes.append(
                f"{len(result.reserve_incompatible)} VMs could not restart on a standby host."
            )
        return ConsolidationPlan(
            method="repack-bulk",
            active_hosts_before=int(start.active_hosts().sum()),
            active_hosts_after=len(on),
            lower_bound=result.lower_bound,
            target=result.target,
            schedule=order_moves(start, result.target),
            hosts_to_power_off=tuple(h.name for h in fleet.hosts if h.name not in on),
            unplaced=result.unplaced,
            notes=tuple(notes),
        )
