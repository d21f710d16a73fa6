"""Keep the N+K reserve: after placing, the cluster can still absorb K failed hosts.

Algebra behind the mask: the VMs of a failed host ``g`` fit in aggregate on the
others iff ``total_free - free_g >= used_g``, i.e. ``total_free >= cap_g``. For
any K hosts that is ``total_free >= sum of the K largest capacities``, per
resource. The condition does not depend on which host receives the VM, so the
mask is all-pass or all-fail. It is the aggregate (necessary) test; the exact
HA check (``corral ha check --policy exact``) adds fragmentation and constraints.
"""

from __future__ import annotations

import numpy as np

from corral.engines.planning.model import VM
from corral.engines.planning.placement.base import HostFilter
from corral.engines.planning.state import (
    EPS,
    MEM,
    RESOURCES,
    VCPU,
    BoolArray,
    ClusterState,
    FloatArray,
    demand_of,
)


def reserve_needed(state: ClusterState, k: int) -> FloatArray:
    """Sum of the K largest enabled host capacities, per resource (cached per host set)."""
    key = (k, np.packbits(state.disabled).tobytes())
    hit = state.reserve_cache.get(key)
    if hit is not None:
        return hit
    cap = state.cap[~state.disabled]
    if k <= 0 or cap.shape[0] == 0:
        value = np.zeros(len(RESOURCES))
    else:
        value = np.asarray(-np.sort(-cap, axis=0)[:k].sum(axis=0), dtype=np.float64)
    if len(state.reserve_cache) > 64:
        state.reserve_cache.clear()
    state.reserve_cache[key] = value
    return value


def reserve_holds(state: ClusterState, k: int) -> bool:
    """Whether the enabled hosts' free vCPUs and memory cover their K largest capacities."""
    if k <= 0:
        return True
    on = ~state.disabled
    free = (state.cap[on] - state.used[on]).sum(axis=0)
    return bool((free[[VCPU, MEM]] >= reserve_needed(state, k)[[VCPU, MEM]] - EPS).all())


class HAReserveFilter(HostFilter):
    name = "ha_reserve"
    description = (
        "After placement the cluster's free vCPUs and memory still cover its K largest hosts."
    )
    parameters = {
        "failures": "K, hosts whose failure must be absorbed (default: settings.ha_host_failures)"
    }
    resolvable = True

    def __init__(self, failures: int | None = None) -> None:
        self.failures = failures

    def _k(self, state: ClusterState) -> int:
        return state.fleet.settings.ha_host_failures if self.failures is None else self.failures

    def _slack(self, state: ClusterState, vm: VM) -> FloatArray:
        if state.disabled.any():
            free = (state.cap[~state.disabled] - state.used[~state.disabled]).sum(axis=0)
        else:
            free = state.cap.sum(axis=0) - state.used.sum(axis=0)
        free = free - demand_of(vm)
        return np.asarray(free - reserve_needed(state, self._k(state)), dtype=np.float64)

    def passes(self, state: ClusterState, vm: VM) -> BoolArray:
        slack = self._slack(state, vm)
        ok = bool(self._k(state) <= 0 or (slack[[VCPU, MEM]] >= -EPS).all())
        return np.full(state.n_hosts, ok, dtype=np.bool_)

    def passes_when_freed(self, state: ClusterState, vm: VM) -> BoolArray:
        """With every other VM freed, only the reserve itself and the VM must fit."""
        total = state.cap[~state.disabled].sum(axis=0) - reserve_needed(state, self._k(state))
        ok = bool((total[[VCPU, MEM]] >= demand_of(vm)[[VCPU, MEM]] - EPS).all())
        return np.full(state.n_hosts, ok, dtype=np.bool_)

    def explain(self, state: ClusterState, vm: VM, host: int) -> str:
        slack = self._slack(state, vm)
        return (
            f"placing it would break the N+{self._k(state)} reserve "
            f"(short by {max(-slack[VCPU], 0):g} vCPUs / {max(-slack[MEM], 0):g} MiB)"
        )
