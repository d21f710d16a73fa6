"""The HA guarantee broken: admission control no longer holds for ``failures`` host
failures, and the hosts whose failure would leave protected VMs with nowhere to restart
(their failover plan no longer holds: VMs grew, hosts shrank or filled up).

Both are the planner's answers on the current fleet (corral.engines.planning.ha), so an
alert says what ``corral plan ha`` says.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from corral.engines.alerting.kinds.base import Needs, Params, Rule
from corral.engines.alerting.model import Condition, Snapshot
from corral.engines.planning.ha.failover import FailoverModel
from corral.engines.planning.ha.registry import make_policy
from corral.engines.planning.model import Fleet


class HAParams(Params):
    #: the admission-control policies that need no parameters of their own
    policy: Literal["exact", "slots", "percentage"] = "exact"
    failures: int = Field(default=1, ge=1, le=8)


class HA(Rule):
    kind = "ha"
    params_model = HAParams
    params: HAParams

    def needs(self) -> Needs:
        return Needs(facts=frozenset({"fleet"}))

    def evaluate(self, snapshot: Snapshot) -> list[Condition]:
        fleet = snapshot.fleet
        if fleet is None or not fleet.hosts:
            return []
        return self._admission(snapshot, fleet) + self._hosts(snapshot, fleet)

    def _admission(self, snapshot: Snapshot, fleet: Fleet) -> list[Condition]:
        p = self.params
        report = make_policy(p.policy).evaluate(fleet, p.failures)
        if report.admission_ok:
            return []
        summary = (
            f"the fleet tolerates {report.tolerated_host_failures} of the {p.failures} host "
            f"failure(s) it must ({p.policy} admission control)"
        )
        value = float(report.tolerated_host_failures)
        return [self.condition(snapshot, "fleet", "fleet", "tolerated_failures", value, summary)]

    def _hosts(self, snapshot: Snapshot, fleet: Fleet) -> list[Condition]:
        model = FailoverModel.build(fleet)
        found = []
        for i, host in enumerate(model.host_names):
            lost = model.single(i).result.lost
            if lost:
                names = ", ".join(sorted(lost)[:5]) + (" ..." if len(lost) > 5 else "")
                summary = f"if {host} fails, {len(lost)} VM(s) have nowhere to restart: {names}"
                count = float(len(lost))
                found.append(
                    self.condition(snapshot, "host", host, "vms_without_failover", count, summary)
                )
        return found
