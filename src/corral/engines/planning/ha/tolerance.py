"""How many host failures a fleet tolerates now, whatever K its N+K setting asks for.

The answer is the largest K such that every set of at most K hosts failing leaves room to
restart every protected VM, by the failover model the exact admission policy uses
(:class:`~corral.engines.planning.ha.failover.FailoverModel`: the same restart order,
worst-fit choice and anti-affinity), so it equals that policy's figure whenever that
figure is below the K it was asked for. Sizes are tried upward from one host; a size is
proven safe

* at once, when every protected VM is a simple one and the hosts' free room is enough for
  any set of that size by one of two bounds (``_size_proven``), so that a fleet of 400
  roomy hosts needs no enumeration of its sets;
* else set by set, each shown safe as the exact policy shows it (``proven_safe``, else a
  simulation); the first set that loses a protected VM ends the search.

Above, the aggregate test bounds it: when some set of hosts holds more protected demand
than all the other hosts have free in one resource, that set fails, whatever the plan.
Past ``budget`` scenarios the search stops and the answer is a range.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from math import comb

import numpy as np

from corral.engines.planning.ha.failover import FailoverModel
from corral.engines.planning.model import Fleet
from corral.engines.planning.state import EPS, MEM, VCPU, FloatArray

#: Scenarios simulated or proven one by one at most, before the answer stays a range: every
#: pair of 70 hosts, about a second (a set of 3 of 64 hosts is 41,664 more, half a minute).
DEFAULT_BUDGET = 2_500
#: Slack of the aggregate test: sums of many demands carry rounding.
_SLACK = 1e-6


@dataclass(frozen=True)
class Tolerance:
    """Host failures tolerated now: exactly ``at_least`` when ``exact``, else a range."""

    at_least: int
    at_most: int
    #: failure sets proven or simulated one by one
    scenarios: int

    @property
    def exact(self) -> bool:
        return self.at_least == self.at_most


def tolerated_failures(fleet: Fleet, budget: int = DEFAULT_BUDGET) -> Tolerance:
    """The largest K that any K hosts failing leave room for (see the module's text)."""
    model = FailoverModel.build(fleet)
    n = len(model.host_names)
    if n == 0 or (model.used > model.cap + EPS).any():
        return Tolerance(0, 0, 0)  # an overloaded host now: nothing is guaranteed
    protected = _protected_demand(model)
    free = model.cap - model.used
    upper = _aggregate_bound(protected, free)
    scenarios = 0
    for k in range(1, upper + 1):
        if _size_proven(model, protected, free, k):
            continue
        if scenarios + comb(n, k) > budget:
            return Tolerance(k - 1, upper, scenarios)
        for combo in combinations(range(n), k):
            scenarios += 1
            if k > 1 and model.proven_safe(combo):
                continue
            result = model.single(combo[0]).result if k == 1 else model.simulate(combo)
            if not result.ok:
                return Tolerance(k - 1, k - 1, scenarios)
    return Tolerance(upper, upper, scenarios)


def _protected_demand(model: FailoverModel) -> FloatArray:
    """Per host (rows) and resource (columns), the demand of its protected VMs."""
    out = np.zeros_like(model.cap)
    keep = model.restartable
    np.add.at(out, model.vm_host[keep], model.demand[keep])
    return out


def _aggregate_bound(protected: FloatArray, free: FloatArray) -> int:
    """The largest k (at most hosts - 1) for which no k hosts hold more protected demand than
    the others have free in some resource. A set S fails that test when the sum over S of
    (protected + free) exceeds the fleet's free room: the k hosts largest in that sum are the
    worst k-set, resource by resource."""
    n = int(protected.shape[0])
    total_free = free.sum(axis=0)
    worst = np.cumsum(-np.sort(-(protected + free), axis=0), axis=0)  # row k-1: top-k sums
    for k in range(1, n):
        if (worst[k - 1] > total_free + _SLACK * (1 + np.abs(total_free))).any():
            return k - 1
    return max(n - 1, 0)


def _size_proven(model: FailoverModel, protected: FloatArray, free: FloatArray, k: int) -> bool:
    """Every k-set proven safe at once, for fleets whose protected VMs are all simple (no
    anti-affinity, CPU requirement or reservation): they need only vCPUs and memory, and the
    restart fails a VM only when no surviving host has room for it.

    ``need`` bounds what any k failed hosts hold (the k heaviest, resource by resource) and
    ``biggest`` any one VM. Either more than k hosts can each take ``need`` whole (one of
    them survives, and worst-fit never fails while one host holds all: the argument of
    ``FailoverModel.fits_on_one``), or the surviving hosts' room beyond ``biggest``, as a
    share of ``need``, sums past 2: a host that turns a VM away has taken more than its room
    beyond ``biggest`` in vCPUs or in memory, so all of them turning it away would take more
    than ``need`` in one of the two resources, more than there is to restart.
    """
    victims = np.flatnonzero(model.restartable)
    if not all(model.simple[i] for i in victims.tolist()):
        return False
    if not victims.size:
        return True
    cols = [VCPU, MEM]
    need = -np.sort(-protected[:, cols], axis=0)[:k].sum(axis=0)
    room = free[:, cols]
    if int(np.all(room >= need - EPS, axis=1).sum()) > k:
        return True
    beyond = np.clip(room - model.demand[victims][:, cols].max(axis=0), 0.0, None)
    share = np.min(np.where(need > EPS, beyond / np.maximum(need, EPS), np.inf), axis=1)
    return float(np.sort(share)[: len(share) - k].sum()) > 2 + _SLACK


__all__ = ["DEFAULT_BUDGET", "Tolerance", "tolerated_failures"]
