"""LR-MMT: local regression over the host's last 10 utilization samples predicts overload.

As in CloudSim 3.0.3, the "loess" fit degenerates to ordinary least squares (its tricube
weights are never zero, so they are not applied); the line through the last 10 samples is
extrapolated one interval past the migration time, multiplied by the safety parameter, and
compared with 1. Hosts with under 10 samples fall back to a 0.7 static threshold. The fit is
linear in the samples, so each VM's share of a host's prediction is precomputed.
"""

from __future__ import annotations

import numpy as np

from corral.engines.simulation.model import BoolArray, FloatArray, IntArray
from corral.engines.simulation.policies.base import Parameter
from corral.engines.simulation.policies.cloudsim_migration import CloudSimMigrationPolicy
from corral.engines.simulation.view import PlanningView

WINDOW = 10
FALLBACK_THRESHOLD = 0.7
# One interval ahead: any VM of a few GB migrates well within one 300 s interval.
MIGRATION_INTERVALS = 1


def regression_weights(window: int = WINDOW, ahead: int = MIGRATION_INTERVALS) -> FloatArray:
    """Weights w such that w @ history (most recent first) is the OLS prediction."""
    x = window - np.arange(window, dtype=np.float64)  # most recent sample has x = window
    centre = (window + 1) / 2.0
    sxx = float(((x - centre) ** 2).sum())
    out: FloatArray = 1.0 / window + (window + ahead - centre) * (x - centre) / sxx
    return out


class LrMmt(CloudSimMigrationPolicy):
    family = "lr-mmt"
    summary = "CloudSim local-regression overload prediction + minimum migration time + PABFD"
    parameters = (
        Parameter("safety", 1.2, "prediction is multiplied by this before comparing with 1"),
    )

    def __init__(self, safety: float = 1.2) -> None:
        self.safety = safety
        self.weights = regression_weights()

    @property
    def name(self) -> str:
        return f"{self.family}-{self.safety:g}"

    def prepare(self, view: PlanningView) -> None:
        forecast = (view.history[:, :WINDOW] @ self.weights) * view.fleet.vm_mips
        view.track_sum("lr", forecast)
        view.track_max("hlen", view.history_len.astype(np.float64))

    def overloaded(self, view: PlanningView, hosts: IntArray) -> BoolArray:
        cap = view.fleet.host_capacity[hosts]
        fitted = view.host_max("hlen")[hosts] >= WINDOW
        predicted = self.safety * view.host_sum("lr")[hosts] / cap >= 1.0
        fallback = view.req_sum[hosts] / cap > FALLBACK_THRESHOLD
        out: BoolArray = np.where(fitted, predicted, fallback)
        return out

    def overloaded_with(self, view: PlanningView, vm: int, hosts: IntArray) -> BoolArray:
        cap = view.fleet.host_capacity[hosts]
        length = np.maximum(view.host_max("hlen")[hosts], view.vm_value("hlen")[vm])
        lr = view.host_sum("lr")[hosts] + view.vm_value("lr")[vm]
        predicted = self.safety * lr / cap >= 1.0
        fallback = (view.req_sum[hosts] + view.requested[vm]) / cap > FALLBACK_THRESHOLD
        out: BoolArray = np.where(length >= WINDOW, predicted, fallback)
        return out
