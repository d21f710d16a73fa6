"""THR-MMT: a host is overloaded when its requested MIPS exceed a static share of capacity."""

from __future__ import annotations

from corral.engines.simulation.model import BoolArray, IntArray
from corral.engines.simulation.policies.base import Parameter
from corral.engines.simulation.policies.cloudsim_migration import CloudSimMigrationPolicy
from corral.engines.simulation.view import PlanningView


class ThrMmt(CloudSimMigrationPolicy):
    family = "thr-mmt"
    summary = "CloudSim static threshold + minimum migration time + PABFD (Beloglazov & Buyya 2012)"
    parameters = (Parameter("threshold", 0.8, "overloaded when requested / capacity exceeds this"),)

    def __init__(self, threshold: float = 0.8) -> None:
        self.threshold = threshold

    @property
    def name(self) -> str:
        return f"{self.family}-{self.threshold:g}"

    def overloaded(self, view: PlanningView, hosts: IntArray) -> BoolArray:
        cap = view.fleet.host_capacity[hosts]
        out: BoolArray = view.req_sum[hosts] / cap > self.threshold
        return out

    def overloaded_with(self, view: PlanningView, vm: int, hosts: IntArray) -> BoolArray:
        cap = view.fleet.host_capacity[hosts]
        out: BoolArray = (view.req_sum[hosts] + view.requested[vm]) / cap > self.threshold
        return out
