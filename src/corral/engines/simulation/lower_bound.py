"""The physical lower bound on a day's energy (method of published-results/README.txt).

At each 5-minute sample the demand D is served by ceil(D / C) of the most efficient host
(the G5, C = 5320 MIPS, cheapest per MIPS at every load) all running at D / (k C); no
placement can draw less power. Power is summed over the samples of ``sample_seconds``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from corral.engines.simulation.model import FloatArray, HostType, VmType, Workload

JOULES_PER_KWH = 3.6e6


def demand_mips(workload: Workload, vm_types: Sequence[VmType]) -> FloatArray:
    """Total requested MIPS at each of the day's 288 samples."""
    mips = np.array([vm_types[t].mips for t in workload.vm_type], dtype=np.float64)
    total: FloatArray = (workload.util[:, :288] * mips[:, None]).sum(axis=0)
    return total


def bound_power_w(demand: FloatArray, host: HostType) -> FloatArray:
    """Least power that can serve each demand value with hosts of type ``host``."""
    cap = host.mips
    count = np.ceil(demand / cap)
    load = np.divide(demand, count * cap, out=np.zeros_like(demand), where=count > 0)
    x = load * 10.0
    idx = np.minimum(np.floor(x).astype(np.int64), 9)
    curve = np.array(host.power_w)
    watts = curve[idx] + (curve[idx + 1] - curve[idx]) * (x - idx)
    result: FloatArray = np.where(count > 0, watts * count, 0.0)
    return result


def energy_lower_bound_kwh(
    workload: Workload, vm_types: Sequence[VmType], best_host: HostType
) -> float:
    """The README's bound: sum over samples of the least power, times the sample length."""
    watts = bound_power_w(demand_mips(workload, vm_types), best_host)
    return float(watts.sum() * workload.sample_seconds / JOULES_PER_KWH)


def served_lower_bound_kwh(served: FloatArray, best_host: HostType, seconds: float) -> float:
    """The same bound on the demand a run actually served at each step."""
    return float(bound_power_w(served, best_host).sum() * seconds / JOULES_PER_KWH)
