"""Exact consolidation with OR-Tools CP-SAT: fewest hosts, then fewest migrations."""

from __future__ import annotations

from dataclasses import replace

from corral.engines.planning.consolidation.bounds import host_lower_bound
from corral.engines.planning.consolidation.exact import solve_exact
from corral.engines.planning.consolidation.migration import order_moves
from corral.engines.planning.consolidation.plan import ConsolidationPlan
from corral.engines.planning.consolidation.strategies.base import ConsolidationStrategy
from corral.engines.planning.consolidation.strategies.drain import DrainStrategy
from corral.engines.planning.model import Fleet
from corral.engines.planning.state import ClusterState


class CpSatStrategy(ConsolidationStrategy):
    name = "exact"
    description = (
        "CP-SAT model of the whole fleet (small fleets); keeps the drain heuristic's plan "
        "when the solver finds nothing better within the time limit."
    )
    parameters = {"time_limit_s": "solver time limit in seconds, default 10"}

    def __init__(self, time_limit_s: float = 10.0) -> None:
        self.time_limit_s = time_limit_s

    def plan(self, fleet: Fleet, failures: int) -> ConsolidationPlan:
        fallback = DrainStrategy().plan(fleet, failures)
        exact = solve_exact(fleet, failures, self.time_limit_s)
        if exact is None or len(exact.hosts_on) > fallback.active_hosts_after:
            note = "CP-SAT found no better plan in the time limit; heuristic result kept."
            return replace(fallback, notes=(*fallback.notes, note))
        state = ClusterState.from_fleet(fleet)
        bound = host_lower_bound(fleet, failures)
        on = set(exact.hosts_on)
        return ConsolidationPlan(
            method="exact-cpsat",
            active_hosts_before=int(state.active_hosts().sum()),
            active_hosts_after=len(on),
            lower_bound=replace(bound, hosts=max(bound.hosts, exact.host_bound)),
            target=exact.target,
            schedule=order_moves(state, exact.target),
            hosts_to_power_off=tuple(h.name for h in fleet.hosts if h.name not in on),
            optimal=exact.optimal,
        )
