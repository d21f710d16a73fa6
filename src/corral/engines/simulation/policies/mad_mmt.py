"""MAD-MMT: adaptive threshold from the median absolute deviation of the host's history."""

from __future__ import annotations

import numpy as np

from corral.engines.simulation.model import FloatArray
from corral.engines.simulation.policies.base import Parameter
from corral.engines.simulation.policies.history_threshold import HistoryThresholdPolicy


class MadMmt(HistoryThresholdPolicy):
    family = "mad-mmt"
    summary = "CloudSim median-absolute-deviation threshold + minimum migration time + PABFD"
    parameters = (Parameter("safety", 2.5, "threshold = 1 - safety * MAD(host history)"),)

    def __init__(self, safety: float = 2.5) -> None:
        super().__init__(safety)

    def spread(self, data: FloatArray) -> FloatArray:
        median = np.median(data, axis=1, keepdims=True)
        out: FloatArray = np.median(np.abs(median - data), axis=1)
        return out
