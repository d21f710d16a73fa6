"""Adaptive-threshold detectors of CloudSim 3.0.3 (IQR, MAD): shared machinery.

The host's utilization history is the sum of its VMs' last 30 samples (each scaled by VM
MIPS / host MIPS), with trailing zeros trimmed. With at least 12 samples, the upper threshold
is ``1 - safety * spread(history)``; a host is overloaded when its current request exceeds it.
With fewer samples CloudSim falls back to a 0.7 static threshold.
"""

from __future__ import annotations

from abc import abstractmethod

import numpy as np

from corral.engines.simulation.model import BoolArray, FloatArray, IntArray
from corral.engines.simulation.policies.cloudsim_migration import CloudSimMigrationPolicy
from corral.engines.simulation.view import PlanningView

MIN_SAMPLES = 12
FALLBACK_THRESHOLD = 0.7


def trimmed_lengths(history: FloatArray) -> IntArray:
    """Samples left in each row after CloudSim's trimZeroTail."""
    nonzero = history != 0
    last = history.shape[1] - 1 - np.argmax(nonzero[:, ::-1], axis=1)
    out: IntArray = np.where(nonzero.any(axis=1), last + 1, 0).astype(np.int64)
    return out


class HistoryThresholdPolicy(CloudSimMigrationPolicy):
    """Overloaded when the request exceeds ``1 - safety * spread(host history)``."""

    def __init__(self, safety: float) -> None:
        self.safety = safety

    @property
    def name(self) -> str:
        return f"{self.family}-{self.safety:g}"

    @abstractmethod
    def spread(self, data: FloatArray) -> FloatArray:
        """Dispersion of each row of ``data`` (rows of equal length)."""

    def prepare(self, view: PlanningView) -> None:
        view.track_sum("hist_mips", view.history * view.fleet.vm_mips[:, None])

    def thresholds(self, history: FloatArray) -> FloatArray:
        """Upper threshold per row, NaN where the history is too short."""
        out = np.full(len(history), np.nan)
        lengths = trimmed_lengths(history)
        for length in np.unique(lengths[lengths >= MIN_SAMPLES]):
            rows = lengths == length
            out[rows] = 1.0 - self.safety * self.spread(history[rows, : int(length)])
        return out

    def verdict(self, history: FloatArray, utilization: FloatArray) -> BoolArray:
        limit = self.thresholds(history)
        out: BoolArray = np.where(
            np.isnan(limit), utilization > FALLBACK_THRESHOLD, utilization > limit
        )
        return out

    def overloaded(self, view: PlanningView, hosts: IntArray) -> BoolArray:
        cap = view.fleet.host_capacity[hosts]
        history = view.host_sum("hist_mips")[hosts] / cap[:, None]
        return self.verdict(history, view.req_sum[hosts] / cap)

    def overloaded_with(self, view: PlanningView, vm: int, hosts: IntArray) -> BoolArray:
        cap = view.fleet.host_capacity[hosts]
        mips = view.host_sum("hist_mips")[hosts] + view.vm_value("hist_mips")[vm]
        utilization = (view.req_sum[hosts] + view.requested[vm]) / cap
        return self.verdict(mips / cap[:, None], utilization)
