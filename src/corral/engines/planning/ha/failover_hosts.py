"""Dedicated failover hosts: named hosts stand empty and take the VMs of failed hosts.

Failover hosts are those passed as ``hosts`` or, by default, hosts labelled
``ha: failover``. Every combination of up to K failed ordinary hosts is
simulated with only the failover hosts as receivers.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np

from corral.engines.planning.ha.base import AdmissionPolicy, HAReport
from corral.engines.planning.ha.failover import FailoverModel
from corral.engines.planning.model import Fleet
from corral.errors import ValidationError

LABEL = "ha"
LABEL_VALUE = "failover"


class FailoverHostsPolicy(AdmissionPolicy):
    name = "failover-hosts"
    description = "Dedicated failover hosts receive the VMs of any K failed hosts."
    parameters = {"hosts": "names of the failover hosts, default: hosts labelled ha: failover"}

    def __init__(self, hosts: list[str] | None = None) -> None:
        self.hosts = hosts

    def _designated(self, fleet: Fleet) -> list[str]:
        names = self.hosts or [h.name for h in fleet.hosts if h.labels.get(LABEL) == LABEL_VALUE]
        known = {h.name for h in fleet.hosts}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValidationError(
                f"Failover host {unknown[0]!r} is not in the fleet; check the name."
            )
        if not names:
            raise ValidationError(
                "No failover hosts: label hosts 'ha: failover' or name them with --failover-host."
            )
        return names

    def evaluate(self, fleet: Fleet, failures: int, demand_scale: float = 1.0) -> HAReport:
        designated = self._designated(fleet)
        model = FailoverModel.build(fleet, demand_scale)
        receivers = np.array([n in designated for n in model.host_names], dtype=np.bool_)
        ordinary = [i for i in range(len(model.host_names)) if not receivers[i]]
        tolerated, failing = failures, 0
        lost: set[str] = set()
        for k in range(1, failures + 1):
            for combo in combinations(ordinary, k):
                r = model.simulate(combo, receivers)
                if not r.ok:
                    failing += 1
                    lost.update(r.lost)
                    tolerated = min(tolerated, k - 1)
        busy = [n for n in designated if model.by_host[model.host_names.index(n)].size]
        details: dict[str, Any] = {
            "failover_hosts": designated,
            "failover_hosts_running_vms": busy,
            "failing_scenarios_count": failing,
            "vms_not_coming_back": sorted(lost),
        }
        return HAReport(self.name, failures, tolerated, details)
