"""Consolidation entry point: pick a strategy (``auto``: exact when the fleet is small)."""

from __future__ import annotations

from corral.engines.planning.consolidation.plan import ConsolidationPlan
from corral.engines.planning.consolidation.strategies.base import ConsolidationStrategy
from corral.engines.planning.consolidation.strategies.cpsat import CpSatStrategy
from corral.engines.planning.consolidation.strategies.drain import DrainStrategy
from corral.engines.planning.consolidation.strategies.registry import STRATEGIES
from corral.engines.planning.model import Fleet
from corral.errors import ValidationError

#: Above these sizes ``auto`` uses the drain heuristic.
EXACT_MAX_VMS = 300
EXACT_MAX_HOSTS = 40
MODES = ("auto", *STRATEGIES)


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
    return _strategy(fleet, mode, time_limit_s).plan(fleet, k)


def _strategy(fleet: Fleet, mode: str, time_limit_s: float) -> ConsolidationStrategy:
    if mode == "auto":
        running = sum(v.running for v in fleet.vms)
        small = running <= EXACT_MAX_VMS and len(fleet.hosts) <= EXACT_MAX_HOSTS
        return CpSatStrategy(time_limit_s) if small else DrainStrategy()
    if mode == CpSatStrategy.name:
        return CpSatStrategy(time_limit_s)
    return STRATEGIES[mode]()
