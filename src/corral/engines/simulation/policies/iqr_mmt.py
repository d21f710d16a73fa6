"""IQR-MMT: adaptive threshold from the interquartile range of the host's history.

Quartiles as CloudSim's MathUtil.iqr takes them: sorted samples at positions
round(0.25 (n + 1)) - 1 and round(0.75 (n + 1)) - 1 (Java rounding, half up).
"""

from __future__ import annotations

import math

import numpy as np

from corral.engines.simulation.model import FloatArray
from corral.engines.simulation.policies.base import Parameter
from corral.engines.simulation.policies.history_threshold import HistoryThresholdPolicy


def java_round(x: float) -> int:
    return math.floor(x + 0.5)


class IqrMmt(HistoryThresholdPolicy):
    family = "iqr-mmt"
    summary = "CloudSim interquartile-range threshold + minimum migration time + PABFD"
    parameters = (Parameter("safety", 1.5, "threshold = 1 - safety * IQR(host history)"),)

    def __init__(self, safety: float = 1.5) -> None:
        super().__init__(safety)

    def spread(self, data: FloatArray) -> FloatArray:
        n = data.shape[1]
        ordered = np.sort(data, axis=1)
        q1 = java_round(0.25 * (n + 1)) - 1
        q3 = java_round(0.75 * (n + 1)) - 1
        out: FloatArray = ordered[:, q3] - ordered[:, q1]
        return out
