"""Where a request's VMs would go, and whether that keeps the N+K guarantee.

The placement engine decides on the fleet as it runs *plus* every reservation of approved,
not yet provisioned requests, so two approvals never book the same capacity. Three outcomes:

- ``placed``: every VM has a host and the cluster still absorbs K host failures;
- ``breaks_ha``: every VM fits, but only by eating into the N+K reserve (``ha_host`` is the
  host whose VM breaks it, ``reasons`` say by how much);
- ``unschedulable``: some VM fits on no host (``reasons`` counts the rejections per filter).

Built for 10,000 hosts: the base ``ClusterState`` is built once by the caller and shared;
each decision works on an overlay that copies only the usage matrix, and the scheduler
explains at most a few rejected hosts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

import numpy as np

from corral.domain.requests import Size
from corral.engines.planning.model import VM
from corral.engines.planning.placement.base import HostFilter
from corral.engines.planning.placement.filters.ha_reserve import HAReserveFilter
from corral.engines.planning.placement.outcome import Outcome, Placed
from corral.engines.planning.placement.registry import default_filters, default_weighers
from corral.engines.planning.placement.scheduler import Scheduler
from corral.engines.planning.state import MEM, VCPU, ClusterState

EXPLAIN = 3  # rejected hosts named per VM; the counts per filter are always complete


class CapacityStatus(StrEnum):
    placed = "placed"
    breaks_ha = "breaks_ha"
    unschedulable = "unschedulable"


@dataclass(frozen=True, slots=True)
class Slot:
    """One VM of the request and the host it would go to."""

    vm: str
    host: str
    vcpus: int
    memory_mib: int


@dataclass(frozen=True, slots=True)
class Booked:
    """Capacity already reserved on a host (by an approved request)."""

    host: str
    vcpus: float
    memory_mib: float


@dataclass(frozen=True, slots=True)
class CapacityVerdict:
    status: CapacityStatus
    slots: tuple[Slot, ...]
    failures: int
    ha_host: str | None = None
    reasons: tuple[str, ...] = ()


def overlay(base: ClusterState, booked: Iterable[Booked]) -> ClusterState:
    """``base`` with the booked capacity added, sharing everything a decision does not change.

    The overlay keeps no per-VM bookkeeping of the base (placements, groups): a request's new
    VMs belong to no affinity group, so the filters need only capacity and usage.
    """
    used = base.used.copy()
    for b in booked:
        i = base.index.get(b.host)
        if i is not None:  # a host removed since: its reservation holds nothing
            used[i, VCPU] += b.vcpus
            used[i, MEM] += b.memory_mib
    n = base.n_hosts
    return replace(
        base,
        used=used,
        placement={},
        vm_by_name={},
        by_host=defaultdict(set),
        anti_affinity=defaultdict(lambda: np.zeros(n)),
        affinity=defaultdict(lambda: np.zeros(n)),
        host_profile=base.host_profile,  # read-only here: the new VMs carry no profile
    )


def place_request(
    base: ClusterState,
    booked: Iterable[Booked],
    count: int,
    size: Size,
    *,
    name: str = "vm",
    failures: int | None = None,
    extra: Sequence[HostFilter] = (),
) -> CapacityVerdict:
    """Place ``count`` VMs of ``size`` on ``base`` plus ``booked``, keeping N+``failures``."""
    vms = [VM(f"{name}-{i + 1}", size.vcpus, size.memory_mib) for i in range(count)]
    return place_new_vms(base, booked, vms, failures=failures, extra=extra)


def place_new_vms(
    base: ClusterState,
    booked: Iterable[Booked],
    vms: Sequence[VM],
    *,
    failures: int | None = None,
    extra: Sequence[HostFilter] = (),
) -> CapacityVerdict:
    """Place ``vms`` (in order) on ``base`` plus ``booked``, keeping N+``failures``; ``extra``
    filters narrow the hosts further (e.g. only those holding the template's image)."""
    booked = tuple(booked)
    vms = list(vms)
    k = base.fleet.settings.ha_host_failures if failures is None else failures
    strict = Scheduler(
        (*default_filters(k), *extra), default_weighers("spread"), explain_limit=EXPLAIN
    )
    slots, stuck = _place_all(strict, overlay(base, booked), vms)
    if stuck is None:
        return CapacityVerdict(CapacityStatus.placed, slots, k)
    if stuck.rejections.counts.get(HAReserveFilter.name):
        loose = Scheduler(
            tuple(f for f in strict.filters if not isinstance(f, HAReserveFilter)),
            strict.weighers,
            explain_limit=EXPLAIN,
        )
        all_slots, still = _place_all(loose, overlay(base, booked), vms)
        if still is None:
            breaking = all_slots[len(slots)]
            why = next(
                (r.reason for r in stuck.rejections.reasons if r.filter == HAReserveFilter.name),
                f"it would break the N+{k} reserve",
            )
            return CapacityVerdict(
                CapacityStatus.breaks_ha,
                all_slots,
                k,
                ha_host=breaking.host,
                reasons=(f"{breaking.vm} on {breaking.host}: {why}",),
            )
    return CapacityVerdict(CapacityStatus.unschedulable, slots, k, reasons=(_no_host(stuck),))


def _place_all(
    scheduler: Scheduler, state: ClusterState, vms: list[VM]
) -> tuple[tuple[Slot, ...], Outcome | None]:
    """Place the VMs one by one; the slots found, and the first outcome that found no host."""
    slots: list[Slot] = []
    for vm in vms:
        outcome = scheduler.decide(state, vm)
        if not isinstance(outcome, Placed):
            return tuple(slots), outcome
        state.add(vm, state.index[outcome.host])
        slots.append(Slot(vm.name, outcome.host, vm.vcpus, vm.memory_mib))
    return tuple(slots), None


def _no_host(outcome: Outcome) -> str:
    if not outcome.rejections.counts:
        return f"{outcome.vm} has no host to go to: the fleet has none; add and sync hosts"
    counts = ", ".join(f"{name} {n:,}" for name, n in sorted(outcome.rejections.counts.items()))
    first = outcome.rejections.reasons[:1]
    example = f" (e.g. {first[0].host}: {first[0].reason})" if first else ""
    return f"{outcome.vm} fits on no host: hosts rejected by {counts or 'none'}{example}"
