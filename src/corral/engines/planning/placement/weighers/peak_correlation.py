"""VMs that peak at the same hour repel each other (MISSION S7, "workload peaks")."""

from __future__ import annotations

import numpy as np

from corral.engines.planning.model import VM
from corral.engines.planning.placement.base import HostWeigher
from corral.engines.planning.state import ClusterState, FloatArray


class PeakCorrelationWeigher(HostWeigher):
    name = "peak_correlation"
    description = (
        "Minus the host's peak hourly CPU use (busy vCPUs / threads) if the VM's utilization "
        "profile were added: a VM lands where its peak hour is quiet. Neutral without a profile."
    )
    parameters = {"multiplier": "weight, default 2.0 in the default scheduler"}

    def raw(self, state: ClusterState, vm: VM, hosts: FloatArray) -> FloatArray:
        idx = hosts.astype(np.intp)
        if vm.profile is None:
            return np.zeros(idx.size)
        combined = state.host_profile[idx] + vm.vcpus * state.profiles[vm.profile]
        peak = combined.max(axis=1) / np.maximum(state.threads[idx], 1.0)
        return np.asarray(-peak, dtype=np.float64)
