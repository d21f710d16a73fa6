"""Order migrations so no host is ever overcommitted mid-way.

Moves whose target has room now go first. When every remaining move waits on
another (a cycle: A's VM goes to B while B's goes to A), one VM takes a
temporary hop to a third host with room, which frees its source. If no host can
take the hop, the remaining VMs are reported as blocked rather than moved in an
overcommitting order.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from corral.engines.planning.consolidation.plan import MigrationSchedule, Move
from corral.engines.planning.model import VM
from corral.engines.planning.state import EPS, ClusterState, demand_of


def can_receive(state: ClusterState, vm: VM, host: int) -> bool:
    """Room in every resource and no anti-affinity partner on ``host`` (ignoring ``vm`` itself)."""
    here = state.placement.get(vm.name) == host
    if here:
        return True
    h = state.fleet.hosts[host]
    if vm.vcpus > h.threads or not vm.required_features <= h.features:
        return False
    if vm.cpu_model is not None and vm.cpu_model != h.cpu_model:
        return False
    if np.any(state.used[host] + demand_of(vm) > state.cap[host] + EPS):
        return False
    return all(state.anti_affinity[g][host] <= 0 for g in vm.anti_affinity)


def order_moves(state: ClusterState, target: Mapping[str, str]) -> MigrationSchedule:
    """A safe order for moving placed VMs to ``target`` (vm -> host); ``state`` is not changed."""
    work = state.copy()
    pending = {
        vm: work.index[h] for vm, h in target.items() if work.placement.get(vm) != work.index[h]
    }
    steps: list[Move] = []
    hopped: set[str] = set()
    while pending:
        if _drain(work, pending, steps):
            continue
        if not _hop(work, pending, steps, hopped):
            return MigrationSchedule(tuple(steps), tuple(sorted(pending)))
    return MigrationSchedule(tuple(steps))


def _apply(work: ClusterState, vm: str, host: int, steps: list[Move], temporary: bool) -> None:
    src = work.placement.get(vm)
    source = None if src is None else work.host_names[src]
    if src is None:
        work.add(work.vm_by_name[vm], host)
    else:
        work.move(vm, host)
    steps.append(Move(vm, source, work.host_names[host], temporary))


def _drain(work: ClusterState, pending: dict[str, int], steps: list[Move]) -> bool:
    """Do every move that is safe now; True if any was done."""
    progressed = False
    for vm in sorted(pending):
        dst = pending[vm]
        if can_receive(work, work.vm_by_name[vm], dst):
            _apply(work, vm, dst, steps, temporary=False)
            del pending[vm]
            progressed = True
    return progressed


def _hop(work: ClusterState, pending: dict[str, int], steps: list[Move], hopped: set[str]) -> bool:
    """Break a deadlock: park one VM that sits where another wants to go; True if done.

    Each VM hops at most once, onto a host no pending move is waiting for if
    possible, so hops free room instead of taking it.
    """
    wanted = set(pending.values())
    blockers = [vm for vm in pending if vm not in hopped and work.placement.get(vm) in wanted]
    free_mem = (work.cap - work.used)[:, 1]
    parking = sorted(range(work.n_hosts), key=lambda h: (h in wanted, -free_mem[h]))
    for vm in sorted(blockers, key=lambda n: work.vm_by_name[n].memory_mib):
        src, dst = work.placement[vm], pending[vm]
        for host in parking:
            if host in (src, dst) or work.disabled[host]:
                continue
            if can_receive(work, work.vm_by_name[vm], host):
                _apply(work, vm, host, steps, temporary=True)
                hopped.add(vm)
                return True
    return False
