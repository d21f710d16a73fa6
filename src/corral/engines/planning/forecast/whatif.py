"""What-if scenarios answered before/after (MISSION S7).

A scenario is a list of changes applied in order to a copy of the fleet: add N
VMs of a size, remove a host (its VMs are evacuated first), reserve capacity
for an approved project (placeholder VMs placed like real ones, so
fragmentation counts). The answer compares a :class:`FleetSummary` before and
after, and lists what could not be placed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from corral.engines.planning.consolidation.bounds import host_lower_bound
from corral.engines.planning.consolidation.evacuation import evacuate
from corral.engines.planning.ha.exact import ExactPolicy
from corral.engines.planning.model import VM, Fleet
from corral.engines.planning.placement.outcome import Placed
from corral.engines.planning.placement.scheduler import place
from corral.engines.planning.state import MEM, VCPU, ClusterState

#: Above this many hosts the HA figure is the aggregate N+K test, not the exact simulation.
EXACT_HA_MAX_HOSTS = 200


@dataclass(frozen=True)
class AddVMs:
    count: int
    vcpus: int
    memory_mib: int
    profile: str | None = None
    prefix: str = "whatif"


@dataclass(frozen=True)
class RemoveHost:
    host: str


@dataclass(frozen=True)
class ReserveCapacity:
    project: str
    count: int
    vcpus: int
    memory_mib: int


Change = AddVMs | RemoveHost | ReserveCapacity


@dataclass(frozen=True)
class FleetSummary:
    hosts: int
    active_hosts: int
    running_vms: int
    vcpu_allocated_pct: float
    memory_allocated_pct: float
    free_vcpus: float
    free_memory_mib: float
    host_lower_bound: int
    ha_tolerated_host_failures: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class WhatIfResult:
    before: FleetSummary
    after: FleetSummary
    not_placed: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {
            "before": self.before.to_dict(),
            "after": self.after.to_dict(),
            "not_placed": list(self.not_placed),
            "notes": list(self.notes),
        }


def summarize(fleet: Fleet, failures: int) -> FleetSummary:
    state = ClusterState.from_fleet(fleet)
    cap, used = state.cap.sum(axis=0), state.used.sum(axis=0)
    return FleetSummary(
        hosts=len(fleet.hosts),
        active_hosts=int(state.active_hosts().sum()),
        running_vms=sum(1 for v in fleet.vms if v.running and v.host),
        vcpu_allocated_pct=round(100 * used[VCPU] / cap[VCPU], 2) if cap[VCPU] else 0.0,
        memory_allocated_pct=round(100 * used[MEM] / cap[MEM], 2) if cap[MEM] else 0.0,
        free_vcpus=round(float(cap[VCPU] - used[VCPU]), 2),
        free_memory_mib=round(float(cap[MEM] - used[MEM]), 1),
        host_lower_bound=host_lower_bound(fleet, failures).hosts,
        ha_tolerated_host_failures=_tolerated(fleet, state, max(failures, 1)),
    )


def _tolerated(fleet: Fleet, state: ClusterState, k: int) -> int:
    if len(fleet.hosts) <= EXACT_HA_MAX_HOSTS:
        return ExactPolicy(domains=False).evaluate(fleet, k).tolerated_host_failures
    free = state.free.sum(axis=0)
    caps = -np.sort(-state.cap, axis=0)
    tol = 0
    while tol < k and (caps[: tol + 1].sum(axis=0)[[VCPU, MEM]] <= free[[VCPU, MEM]]).all():
        tol += 1
    return tol


def what_if(fleet: Fleet, changes: list[Change]) -> WhatIfResult:
    """Apply ``changes`` to a copy of ``fleet`` and compare before and after."""
    k = fleet.settings.ha_host_failures
    after = fleet
    missing: list[str] = []
    notes: list[str] = []
    for change in changes:
        after, lost, note = _apply(after, change)
        missing += lost
        notes += note
    return WhatIfResult(summarize(fleet, k), summarize(after, k), tuple(missing), tuple(notes))


def _apply(fleet: Fleet, change: Change) -> tuple[Fleet, list[str], list[str]]:
    if isinstance(change, RemoveHost):
        return _remove_host(fleet, change)
    if isinstance(change, AddVMs):
        vms = [
            VM(f"{change.prefix}-{i + 1}", change.vcpus, change.memory_mib, profile=change.profile)
            for i in range(change.count)
        ]
    else:
        vms = [
            VM(f"reserve-{change.project}-{i + 1}", change.vcpus, change.memory_mib)
            for i in range(change.count)
        ]
    return _add(fleet, vms)


def _add(fleet: Fleet, vms: list[VM]) -> tuple[Fleet, list[str], list[str]]:
    result = place(fleet, vms, atomic=False)
    hosts = {o.vm: o.host for o in result.outcomes if isinstance(o, Placed)}
    placed = [replace(v, host=hosts[v.name]) for v in vms if v.name in hosts]
    lost = [v.name for v in vms if v.name not in hosts]
    note = [f"{len(lost)} of {len(vms)} new VMs could not be placed"] if lost else []
    return fleet.with_vms([*fleet.vms, *placed]), lost, note


def _remove_host(fleet: Fleet, change: RemoveHost) -> tuple[Fleet, list[str], list[str]]:
    plan = evacuate(fleet, [change.host])
    target = {m.vm: m.target for m in plan.schedule.steps}
    vms = [
        replace(v, host=target.get(v.name)) if v.host == change.host else v
        for v in fleet.vms
        if v.host != change.host or v.name in target or not v.running
    ]
    vms = [replace(v, host=None) if v.host == change.host else v for v in vms]
    hosts = [h for h in fleet.hosts if h.name != change.host]
    note = (
        [f"removing {change.host} leaves {len(plan.unplaced)} VMs without a host"]
        if plan.unplaced
        else []
    )
    return fleet.with_hosts(hosts).with_vms(vms), list(plan.unplaced), note
