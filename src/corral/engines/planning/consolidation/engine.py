"""Consolidation entry point: fewest active hosts, then fewest migrations, with a lower bound."""

from __future__ import annotations

from dataclasses import replace

from corral.engines.planning.consolidation.bounds import host_lower_bound
from corral.engines.planning.consolidation.bulk import pack
from corral.engines.planning.consolidation.exact import solve_exact
from corral.engines.planning.consolidation.heuristic import drain_hosts, place_unplaced
from corral.engines.planning.consolidation.migration import order_moves
from corral.engines.planning.consolidation.plan import ConsolidationPlan
from corral.engines.planning.model import Fleet
from corral.engines.planning.placement.registry import default_filters, default_weighers
from corral.engines.planning.placement.scheduler import Scheduler
from corral.engines.planning.state import ClusterState
from corral.errors import ValidationError

#: Above these sizes ``auto`` uses the heuristic.
EXACT_MAX_VMS = 300
EXACT_MAX_HOSTS = 40
MODES = ("auto", "exact", "heuristic", "repack")


def consolidate(
    fleet: Fleet,
    mode: str = "auto",
    *,
    failures: int | None = None,
    time_limit_s: float = 10.0,
) -> ConsolidationPlan:
    """Plan the fewest active hosts with the fewest migrations, keeping an N+K reserve.

    ``exact`` is CP-SAT (small fleets), ``heuristic`` drains the least-loaded
    hosts (any size, few migrations), ``repack`` packs every VM afresh with the
    bulk packer and K empty standby hosts (fewest hosts, many migrations),
    ``auto`` picks exact when the fleet is small.
    """
    if mode not in MODES:
        raise ValidationError(f"Consolidation mode {mode!r} is unknown; use {', '.join(MODES)}.")
    k = fleet.settings.ha_host_failures if failures is None else failures
    small = (
        sum(v.running for v in fleet.vms) <= EXACT_MAX_VMS and len(fleet.hosts) <= EXACT_MAX_HOSTS
    )
    if mode == "repack":
        return _repack(fleet, k)
    heuristic = _heuristic(fleet, k)
    if mode == "heuristic" or (mode == "auto" and not small):
        return heuristic
    exact = solve_exact(fleet, k, time_limit_s)
    if exact is None or len(exact.hosts_on) > heuristic.active_hosts_after:
        notes = ("CP-SAT found no better plan in the time limit; heuristic result kept.",)
        return _with_notes(heuristic, notes)
    state = ClusterState.from_fleet(fleet)
    bound = host_lower_bound(fleet, k)
    schedule = order_moves(state, exact.target)
    used = set(exact.hosts_on)
    return ConsolidationPlan(
        method="exact-cpsat",
        active_hosts_before=int(state.active_hosts().sum()),
        active_hosts_after=len(used),
        lower_bound=replace(bound, hosts=max(bound.hosts, exact.host_bound)),
        target=exact.target,
        schedule=schedule,
        hosts_to_power_off=tuple(h.name for h in fleet.hosts if h.name not in used),
        optimal=exact.optimal,
    )


def _with_notes(plan: ConsolidationPlan, notes: tuple[str, ...]) -> ConsolidationPlan:
    return replace(plan, notes=plan.notes + notes)


def _heuristic(fleet: Fleet, k: int) -> ConsolidationPlan:
    state = ClusterState.from_fleet(fleet)
    before = int(state.active_hosts().sum())
    scheduler = Scheduler(default_filters(k), default_weighers("stack"), explain_limit=0)
    bound = host_lower_bound(fleet, k)
    unplaced = place_unplaced(state, fleet, scheduler)
    drain_hosts(state, scheduler, bound.hosts, k)
    target = {vm: state.host_names[h] for vm, h in state.placement.items()}
    schedule = order_moves(ClusterState.from_fleet(fleet), target)
    active = ~state.disabled
    notes: tuple[str, ...] = ()
    if bound.hosts > len(fleet.hosts):
        notes = (f"No placement meets the N+{k} reserve with these hosts; add capacity.",)
    return ConsolidationPlan(
        method="heuristic-drain",
        active_hosts_before=before,
        active_hosts_after=int(active.sum()),
        lower_bound=bound,
        target=target,
        schedule=schedule,
        hosts_to_power_off=tuple(
            state.host_names[i] for i in range(state.n_hosts) if not active[i]
        ),
        unplaced=tuple(unplaced),
        notes=notes,
    )


def _repack(fleet: Fleet, k: int) -> ConsolidationPlan:
    result = pack(fleet, k)
    start = ClusterState.from_fleet(fleet)
    on = set(result.target.values()) | set(result.reserve_hosts)
    notes = [f"{len(result.reserve_hosts)} empty standby host(s) kept for the N+{k} reserve."]
    if result.unplaced:
        notes.append(f"{len(result.unplaced)} VMs found no host in the repack; they stay put.")
    if result.reserve_incompatible:
        notes.append(f"{len(result.reserve_incompatible)} VMs could not restart on a standby host.")
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
