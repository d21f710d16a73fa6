"""Fast consolidation: drain hosts onto the others, one host at a time.

Hosts are tried from the fewest VMs up (then the least loaded): each VM of a
switched-off host is one migration, and only VMs of switched-off hosts move.
A host is switched off only if every one of its VMs finds room on the hosts
that stay on (stacking weighers, every filter including the N+K reserve
counted over the hosts that stay on). Stops once the lower bound is reached.
"""

from __future__ import annotations

import numpy as np

from corral.engines.planning.model import Fleet
from corral.engines.planning.placement.filters.ha_reserve import reserve_holds
from corral.engines.planning.placement.outcome import Placed
from corral.engines.planning.placement.scheduler import Scheduler, request_order
from corral.engines.planning.state import MEM, VCPU, ClusterState


def load_fraction(state: ClusterState) -> np.ndarray:
    frac = state.used[:, [VCPU, MEM]] / np.maximum(state.cap[:, [VCPU, MEM]], 1e-9)
    return np.asarray(frac.max(axis=1), dtype=np.float64)


def place_unplaced(state: ClusterState, fleet: Fleet, scheduler: Scheduler) -> list[str]:
    """Put running VMs without a host on the active hosts first; returns the ones left over."""
    left: list[str] = []
    todo = [v for v in fleet.vms if v.running and v.host is None]
    for vm in request_order(todo):
        outcome = scheduler.decide(state, vm)
        if isinstance(outcome, Placed):
            state.add(vm, state.index[outcome.host])
        else:
            left.append(vm.name)
    return left


def drain_hosts(state: ClusterState, scheduler: Scheduler, floor: int, failures: int) -> None:
    """Switch off (disable) hosts whose VMs all fit elsewhere, until ``floor`` hosts remain on.

    Empty hosts come first, then hosts with the fewest VMs; a host stays on if
    switching it off would break the N+K reserve, so the hosts left on include
    any empty standby the reserve needs.
    """
    counts = np.array([len(state.by_host.get(i, ())) for i in range(state.n_hosts)])
    for h in np.lexsort((load_fraction(state), counts)):  # fewest VMs first: fewest moves
        host = int(h)
        if state.disabled[host] or int((~state.disabled).sum()) <= floor:
            continue
        _try_drain(state, scheduler, host, failures)


def _try_drain(state: ClusterState, scheduler: Scheduler, host: int, failures: int) -> bool:
    state.disabled[host] = True
    moved: list[str] = []
    ok = reserve_holds(state, failures)
    for vm in request_order(state.vms_on(host)) if ok else []:
        outcome = scheduler.decide(state, vm)
        if not isinstance(outcome, Placed):
            ok = False
            break
        state.move(vm.name, state.index[outcome.host])
        moved.append(vm.name)
    if not ok:
        for name in moved:
            state.move(name, host)
        state.disabled[host] = False
    return ok
