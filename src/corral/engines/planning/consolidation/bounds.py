"""A valid lower bound on the hosts any plan needs, reported beside every result.

Three arguments, the largest wins:

* resources: for each resource r, the fewest hosts n such that, after losing the
  K largest of them, the rest still hold the demand. No set of n hosts can do
  better than the globally largest capacities, so the smallest n with
  ``sum(sorted_caps[K:n]) >= demand_r`` is a bound;
* anti-affinity: a group with g running members needs g hosts (the planners
  keep the N+K reserve in aggregate, so restarting members on distinct hosts
  is checked by the exact HA policy, not promised here);
* one VM's vCPUs or memory larger than any host makes the instance infeasible
  (reported as such, not as a bound).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from corral.engines.planning.model import Fleet
from corral.engines.planning.state import EPS, MEM, VCPU, ClusterState, demand_of


@dataclass(frozen=True)
class LowerBound:
    hosts: int
    by_resource: dict[str, int] = field(default_factory=dict)
    anti_affinity: int = 0

    def to_dict(self) -> dict[str, object]:
        return {
            "hosts": self.hosts,
            "by_resource": dict(self.by_resource),
            "anti_affinity": self.anti_affinity,
        }


def _resource_bound(caps: np.ndarray, demand: float, k: int) -> int:
    ranked = np.sort(caps)[::-1]
    if demand <= EPS:
        return 0
    usable = np.cumsum(ranked[k:])
    reach = np.flatnonzero(usable >= demand - EPS)
    return int(reach[0]) + 1 + k if reach.size else len(ranked) + 1


def host_lower_bound(fleet: Fleet, failures: int = 0) -> LowerBound:
    """Valid lower bound on active hosts for the fleet's running VMs with an N+K reserve."""
    state = ClusterState.from_fleet(fleet)
    running = [v for v in fleet.vms if v.running]
    total = sum((demand_of(v) for v in running), np.zeros(4))
    by_res = {
        "vcpus": _resource_bound(state.cap[:, VCPU], float(total[VCPU]), failures),
        "memory_mib": _resource_bound(state.cap[:, MEM], float(total[MEM]), failures),
    }
    members: Counter[str] = Counter(g for v in running for g in v.anti_affinity)
    aa = max(members.values(), default=0)
    return LowerBound(max([*by_res.values(), aa, 1 if running else 0]), by_res, aa)
