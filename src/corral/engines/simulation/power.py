"""Host power from an 11-point SPECpower curve, linear between the 10 % points (vectorised)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from corral.engines.simulation.model import FloatArray, HostType, IntArray


def power_table(hosts: Sequence[HostType]) -> FloatArray:
    """One row of 11 wattages per host."""
    return np.array([h.power_w for h in hosts], dtype=np.float64)


def power_at(
    table: FloatArray, utilization: FloatArray, rows: IntArray | None = None
) -> FloatArray:
    """Watts of host ``rows`` (all hosts if None) at ``utilization`` (0..1, clipped)."""
    tab = table if rows is None else table[rows]
    x = np.clip(utilization, 0.0, 1.0) * 10.0
    idx = np.minimum(np.floor(x).astype(np.int64), 9)
    frac = x - idx
    ar = np.arange(len(tab))
    low = tab[ar, idx]
    high = tab[ar, idx + 1]
    result: FloatArray = low + (high - low) * frac
    return result
