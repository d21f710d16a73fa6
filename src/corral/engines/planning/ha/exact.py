"""Exact admission control: simulate every combination of up to K host failures.

For each scenario (every set of k <= K hosts, and every failure domain taking
all its hosts down) the failed hosts' protected VMs are restarted by
:class:`~corral.engines.planning.ha.failover.FailoverModel`. A multi-host
scenario is proven safe without a simulation when one surviving host has room for all
its VMs (``FailoverModel.fits_on_one``) or its single-host plans combine without conflict
(``FailoverModel.survives``); the others are simulated. The report names
the VMs that would not come back and keeps the precomputed failover plan for
each single-host failure (VM -> target host), so a real failure follows a plan
instead of a random choice that overloads the receiver (MISSION S8).
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

from corral.engines.planning.ha.base import AdmissionPolicy, HAReport
from corral.engines.planning.ha.failover import FailoverModel, FailoverResult
from corral.engines.planning.model import Fleet
from corral.engines.planning.state import EPS


def failure_domains(fleet: Fleet) -> dict[str, list[int]]:
    """Domain name -> indices of the hosts it takes down."""
    out: dict[str, list[int]] = {}
    for i, h in enumerate(fleet.hosts):
        for d in h.failure_domains:
            out.setdefault(d, []).append(i)
    return out


def _scenario(r: FailoverResult) -> dict[str, Any]:
    return {"failed_hosts": list(r.failed_hosts), "lost_vms": list(r.lost)}


class ExactPolicy(AdmissionPolicy):
    name = "exact"
    description = "Simulate every combination of K host failures and every failure domain."
    parameters = {
        "max_listed": "failing scenarios listed in full, default 50",
        "domains": "also fail each failure domain as a whole, default true",
        "prune": "prove multi-host scenarios safe without simulating them, default true",
    }

    def __init__(self, max_listed: int = 50, domains: bool = True, prune: bool = True) -> None:
        self.max_listed = max_listed
        self.domains = domains
        self.prune = prune

    def evaluate(self, fleet: Fleet, failures: int, demand_scale: float = 1.0) -> HAReport:
        model = FailoverModel.build(fleet, demand_scale)
        n = len(model.host_names)
        k_max = min(failures, max(n - 1, 0))
        overloaded = [
            model.host_names[i] for i in range(n) if (model.used[i] > model.cap[i] + EPS).any()
        ]
        tolerated, failing, checked = (-1 if overloaded else k_max), [], 0
        lost_union: set[str] = set()
        for k in range(1, k_max + 1):
            for combo in combinations(range(n), k):
                checked += 1
                if k > 1 and self.prune and model.proven_safe(combo):
                    continue
                r = model.single(combo[0]).result if k == 1 else model.simulate(combo)
                if not r.ok:
                    failing.append(r)
                    lost_union.update(r.lost)
                    tolerated = min(tolerated, k - 1)
        details: dict[str, Any] = {
            "scenarios_checked": checked,
            "failing_scenarios_count": len(failing),
            "failing_scenarios": [_scenario(r) for r in failing[: self.max_listed]],
            "vms_not_coming_back": sorted(lost_union),
            "failover_plan": self._single_host_plans(model),
            "overloaded_hosts_now": overloaded,
        }
        if self.domains:
            details["failure_domains"] = self._domains(fleet, model)
        return HAReport(self.name, failures, max(tolerated, 0), details)

    @staticmethod
    def _single_host_plans(model: FailoverModel) -> dict[str, dict[str, str]]:
        return {
            model.host_names[h]: model.single(h).result.plan
            for h in range(len(model.host_names))
            if model.by_host[h].size
        }

    @staticmethod
    def _domains(fleet: Fleet, model: FailoverModel) -> list[dict[str, Any]]:
        rows = []
        for name, hosts in sorted(failure_domains(fleet).items()):
            r = model.simulate(hosts)
            rows.append(
                {
                    "domain": name,
                    "hosts": list(r.failed_hosts),
                    "ok": r.ok,
                    "single_point_of_failure": not r.ok,
                    "lost_vms": list(r.lost),
                    "plan": r.plan,
                }
            )
        return rows
