"""CPU model and feature compatibility (e.g. a VM that needs avx512 or a given model)."""

from __future__ import annotations

import numpy as np

from corral.engines.planning.model import VM
from corral.engines.planning.placement.base import HostFilter
from corral.engines.planning.state import BoolArray, ClusterState


class CpuCompatibilityFilter(HostFilter):
    name = "cpu_compat"
    description = (
        "The host has every CPU feature the VM requires and, if the VM names one, its CPU model."
    )

    def __init__(self) -> None:
        self._cache: dict[tuple[int, frozenset[str], str | None], BoolArray] = {}

    def passes(self, state: ClusterState, vm: VM) -> BoolArray:
        if not vm.required_features and vm.cpu_model is None:
            return np.ones(state.n_hosts, dtype=np.bool_)
        key = (id(state.fleet.hosts), vm.required_features, vm.cpu_model)
        if key not in self._cache:
            self._cache[key] = np.array(
                [self._ok(state, vm, i) for i in range(state.n_hosts)], dtype=np.bool_
            )
        return self._cache[key]

    @staticmethod
    def _ok(state: ClusterState, vm: VM, i: int) -> bool:
        host = state.fleet.hosts[i]
        if vm.cpu_model is not None and host.cpu_model != vm.cpu_model:
            return False
        return vm.required_features <= host.features

    def explain(self, state: ClusterState, vm: VM, host: int) -> str:
        h = state.fleet.hosts[host]
        if vm.cpu_model is not None and h.cpu_model != vm.cpu_model:
            return f"CPU model is {h.cpu_model or 'unknown'}, the VM needs {vm.cpu_model}"
        missing = sorted(vm.required_features - h.features)
        return "missing CPU features: " + ", ".join(missing)
