"""Capacity planning on a fleet: place, consolidate, rebalance, evacuate, what-if, forecast.

Each function takes a planning :class:`Fleet` (from :mod:`corral.services.fleet`)
and typed parameters, runs the pure engine and returns a frozen, typed result;
the CLI and the REST API render the same result. Bad parameters raise
ValidationError, unknown hosts or VMs NotFoundError.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corral.engines.planning.consolidation.evacuation import evacuate as _evacuate
from corral.engines.planning.consolidation.plan import ConsolidationPlan, EvacuationPlan
from corral.engines.planning.consolidation.rebalance import RebalancePlan
from corral.engines.planning.consolidation.rebalance import rebalance as _rebalance
from corral.engines.planning.forecast.exhaustion import Exhaustion
from corral.engines.planning.forecast.history import History, forecast_fleet, load_history
from corral.engines.planning.forecast.whatif import (
    AddVMs,
    Change,
    FleetSummary,
    RemoveHost,
    ReserveCapacity,
    WhatIfResult,
    what_if,
)
from corral.engines.planning.model import VM, Fleet
from corral.engines.planning.placement.outcome import (
    Outcome,
    Placed,
    Rejections,
    UnschedulableFreeingWouldHelp,
)
from corral.engines.planning.placement.ranking import HostRank
from corral.engines.planning.placement.ranking import rank_hosts as _rank
from corral.engines.planning.placement.scheduler import Scheduler, place
from corral.engines.planning.state import ClusterState
from corral.errors import ValidationError

__all__ = [
    "AddVMs",
    "Change",
    "ConsolidationMode",
    "ConsolidationPlan",
    "EvacuationPlan",
    "Fleet",
    "FleetSummary",
    "ForecastReport",
    "HostRank",
    "NewVM",
    "PlacementOutcome",
    "PlacementReport",
    "PlacementStatus",
    "PlacementStrategy",
    "RebalancePlan",
    "RemoveHost",
    "ReserveCapacity",
    "WhatIfResult",
    "able_hosts",
    "consolidate",
    "evacuate",
    "forecast",
    "headroom",
    "place_vms",
    "rank_hosts",
    "rebalance",
    "whatif",
]


class PlacementStrategy(enum.StrEnum):
    """spread: least-loaded host first; stack: fullest host that fits first."""

    spread = "spread"
    stack = "stack"


class ConsolidationMode(enum.StrEnum):
    auto = "auto"  # exact on small fleets, heuristic otherwise
    exact = "exact"  # CP-SAT
    heuristic = "heuristic"  # drain the least-loaded hosts, few moves
    repack = "repack"  # bulk packing, fewest hosts, many moves


class PlacementStatus(enum.StrEnum):
    placed = "placed"
    unschedulable_freeing_would_help = "unschedulable_freeing_would_help"
    unschedulable = "unschedulable"


@dataclass(frozen=True)
class NewVM:
    """A VM that is not in the fleet yet, to be placed."""

    name: str
    vcpus: int
    memory_mib: int
    profile: str | None = None


@dataclass(frozen=True)
class PlacementOutcome:
    """Where one VM goes (``host``), or why it cannot: every rejected host with its filter."""

    vm: str
    status: PlacementStatus
    rejections: Rejections
    host: str | None = None
    score: float | None = None
    candidates: tuple[str, ...] = ()  # hosts that would pass if other VMs moved away

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"vm": self.vm, "status": self.status.value}
        if self.status is PlacementStatus.placed:
            out.update(host=self.host, score=round(self.score or 0.0, 6))
        if self.status is PlacementStatus.unschedulable_freeing_would_help:
            out["candidates"] = list(self.candidates)
        out["rejections"] = self.rejections.to_dict()
        return out


@dataclass(frozen=True)
class PlacementReport:
    """The outcome of a placement request, one :class:`PlacementOutcome` per VM."""

    all_placed: bool
    outcomes: tuple[PlacementOutcome, ...]


@dataclass(frozen=True)
class ForecastReport:
    """Time to exhaustion per host and for the cluster net of its HA reserve of ``failures``."""

    failures: int
    horizon_days: float
    exhaustions: tuple[Exhaustion, ...]


def place_vms(
    fleet: Fleet,
    vms: Sequence[str] = (),
    new: Sequence[NewVM] = (),
    *,
    strategy: PlacementStrategy = PlacementStrategy.spread,
    atomic: bool = True,
) -> PlacementReport:
    """Choose hosts for unplaced VMs of the fleet (``vms``) and new ones; none given: every
    VM without a host. Returns a :class:`PlacementReport`; ``atomic``: all or nothing."""
    request = [fleet.vm(n) for n in vms]
    placed = [v for v in request if v.host is not None]
    if placed:
        raise ValidationError(
            f"VM {placed[0].name} already runs on {placed[0].host}; "
            "plan evacuate or consolidate moves placed VMs."
        )
    request += [VM(n.name, n.vcpus, n.memory_mib, profile=n.profile) for n in new]
    if not request:
        request = [v for v in fleet.vms if v.host is None]
    if not request:
        raise ValidationError("Nothing to place: the fleet has no VM without a host; use --new.")
    result = place(fleet, request, Scheduler.default(strategy.value), atomic=atomic)
    outcomes = tuple(_outcome(o) for o in result.outcomes)
    return PlacementReport(all_placed=result.all_placed, outcomes=outcomes)


def _outcome(o: Outcome) -> PlacementOutcome:
    status = PlacementStatus(o.status)
    if isinstance(o, Placed):
        return PlacementOutcome(o.vm, status, o.rejections, host=o.host, score=o.score)
    if isinstance(o, UnschedulableFreeingWouldHelp):
        return PlacementOutcome(o.vm, status, o.rejections, candidates=o.candidates)
    return PlacementOutcome(o.vm, status, o.rejections)


def consolidate(
    fleet: Fleet,
    mode: ConsolidationMode = ConsolidationMode.auto,
    *,
    failures: int | None = None,
    time_limit_s: float = 10.0,
) -> ConsolidationPlan:
    """Fewest active hosts with fewest migrations, keeping an N+K reserve (``failures``,
    default: the fleet's settings). Returns the engine's ConsolidationPlan: target host
    per VM, ordered migrations, hosts to power off and the lower bound it was held to."""
    from corral.engines.planning.consolidation.engine import consolidate as run  # OR-Tools

    return run(fleet, mode.value, failures=failures, time_limit_s=time_limit_s)


def rebalance(fleet: Fleet, max_migrations: int = 10) -> RebalancePlan:
    """At most ``max_migrations`` moves that cool the hottest hosts. Returns a RebalancePlan
    (the ordered moves, peak load and load spread before and after)."""
    if max_migrations < 1:
        raise ValidationError("max_migrations must be at least 1.")
    return _rebalance(fleet, max_migrations)


def evacuate(
    fleet: Fleet, hosts: Sequence[str], *, keep_ha_reserve: bool = False
) -> EvacuationPlan:
    """Move every VM off ``hosts`` (maintenance) without overloading a receiver. Returns an
    EvacuationPlan: ordered moves, the VMs that find no host and why."""
    if not hosts:
        raise ValidationError("Name at least one host to evacuate.")
    for name in hosts:
        fleet.host(name)  # NotFoundError names an unknown host
    return _evacuate(fleet, list(hosts), keep_ha_reserve=keep_ha_reserve)


def whatif(fleet: Fleet, changes: Sequence[Change]) -> WhatIfResult:
    """The fleet before and after ``changes`` (AddVMs, RemoveHost, ReserveCapacity).
    Returns a WhatIfResult: two FleetSummary figures and the VMs that would not fit."""
    if not changes:
        raise ValidationError("No change given; add VMs, remove a host or reserve capacity.")
    return what_if(fleet, list(changes))


def forecast(
    fleet: Fleet,
    history: Path | History,
    *,
    failures: int | None = None,
    horizon_days: float = 365.0,
) -> ForecastReport:
    """Days until each host and the cluster (net of ``failures`` hosts, default: the fleet's
    settings) run out of CPU or memory, from a usage history (a CSV path or parsed).
    Returns a :class:`ForecastReport` with one Exhaustion per scope and resource."""
    if horizon_days <= 0:
        raise ValidationError("horizon_days must be positive.")
    k = fleet.settings.ha_host_failures if failures is None else failures
    series = load_history(history) if isinstance(history, Path) else history
    found = forecast_fleet(fleet, series, k, horizon_days)
    return ForecastReport(failures=k, horizon_days=horizon_days, exhaustions=tuple(found))


def rank_hosts(
    fleet: Fleet, new: NewVM, strategy: PlacementStrategy = PlacementStrategy.spread
) -> tuple[HostRank, ...]:
    """Every host of ``fleet`` for one new VM, as the placement engine sees it: the hosts that
    pass best first with each weigher's score, then the others with the filter that refused
    them and why. The first one is the host ``place_vms`` would choose."""
    vm = VM(new.name, new.vcpus, new.memory_mib, profile=new.profile)
    return _rank(Scheduler.default(strategy.value), ClusterState.from_fleet(fleet), vm)


def able_hosts(fleet: Fleet, vcpus: int, memory_mib: int) -> tuple[str, ...]:
    """The hosts that could take a VM of this size now, best first (spread)."""
    ranked = rank_hosts(fleet, NewVM("candidate", max(vcpus, 1), max(memory_mib, 1)))
    return tuple(r.host for r in ranked if r.rank is not None)


def headroom(after: FleetSummary, vcpus: int, memory_mib: int) -> int:
    """How many more VMs of this size the fleet's free vCPUs and memory hold in total (an
    upper bound: one VM cannot span hosts)."""
    if vcpus < 1 or memory_mib < 1:
        raise ValidationError("a VM size needs at least 1 vCPU and 1 MiB.")
    return max(0, int(min(after.free_vcpus // vcpus, after.free_memory_mib // memory_mib)))
