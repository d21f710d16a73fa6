"""Restart simulation: where the VMs of failed hosts go, and which do not come back.

Built for thousands of failure scenarios: the fleet is turned once into arrays
(:class:`FailoverModel`); each scenario then restarts the failed hosts' protected
VMs in priority order (replicated first, then larger memory first), each on the
compatible surviving host with the most free memory that has room in every
resource and holds no member of its anti-affinity groups. Affinity is treated
as a preference and not enforced during failover.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from corral.engines.planning.model import VM, Fleet, Protection
from corral.engines.planning.state import (
    EPS,
    MEM,
    BoolArray,
    ClusterState,
    FloatArray,
    IntArray,
    demand_of,
)


@dataclass(frozen=True)
class FailoverResult:
    failed_hosts: tuple[str, ...]
    plan: dict[str, str]
    #: Protected VMs that found no host to restart on.
    lost: tuple[str, ...]
    #: VMs with protection "none": down with their host, by design.
    unprotected: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.lost


@dataclass
class FailoverModel:
    """The fleet as arrays for fast what-if-these-hosts-fail questions."""

    host_names: tuple[str, ...]
    vm_names: tuple[str, ...]
    cap: FloatArray
    used: FloatArray
    demand: FloatArray
    vm_host: IntArray
    restartable: BoolArray
    order_key: FloatArray
    compat: BoolArray
    vm_groups: tuple[tuple[int, ...], ...]
    group_count: FloatArray
    by_host: tuple[IntArray, ...]

    @classmethod
    def build(cls, fleet: Fleet, demand_scale: float = 1.0) -> FailoverModel:
        state = ClusterState.from_fleet(fleet)
        vms = [v for v in fleet.vms if v.running and v.host is not None]
        groups = sorted({g for v in vms for g in v.anti_affinity})
        gid = {g: i for i, g in enumerate(groups)}
        demand = np.array([demand_of(v) for v in vms]).reshape(len(vms), 4) * demand_scale
        vm_host = np.array([state.index[v.host] for v in vms if v.host is not None], dtype=np.intp)
        group_count = np.zeros((len(groups), state.n_hosts))
        vm_groups = tuple(tuple(gid[g] for g in v.anti_affinity) for v in vms)
        for i, gs in enumerate(vm_groups):
            for g in gs:
                group_count[g, vm_host[i]] += 1
        key = np.array(
            [
                -(v.priority * 1e9)
                - (1e8 if v.protection is Protection.replicated else 0)
                - v.memory_mib
                for v in vms
            ]
        )
        return cls(
            host_names=state.host_names,
            vm_names=tuple(v.name for v in vms),
            cap=state.cap,
            used=state.used * demand_scale,
            demand=demand,
            vm_host=vm_host,
            restartable=np.array(
                [v.protection is not Protection.none for v in vms], dtype=np.bool_
            ),
            order_key=key,
            compat=_compat_matrix(fleet, vms),
            vm_groups=vm_groups,
            group_count=group_count,
            by_host=tuple(np.flatnonzero(vm_host == h) for h in range(state.n_hosts)),
        )

    def vms_of(self, hosts: Sequence[int]) -> IntArray:
        if len(hosts) == 1:
            return self.by_host[hosts[0]]
        return np.concatenate([self.by_host[h] for h in hosts]) if hosts else np.zeros(0, np.intp)

    def simulate(self, failed: Sequence[int], receivers: BoolArray | None = None) -> FailoverResult:
        """Restart the protected VMs of ``failed`` on the surviving (receiver) hosts."""
        alive = np.ones(len(self.host_names), dtype=np.bool_)
        alive[list(failed)] = False
        if receivers is not None:
            alive &= receivers
        used = self.used.copy()
        groups = self.group_count.copy()
        groups[:, list(failed)] = 0
        victims = self.vms_of(failed)
        unprotected = tuple(self.vm_names[i] for i in victims if not self.restartable[i])
        lost: list[str] = []
        todo = victims[self.restartable[victims]]
        todo = todo[np.argsort(self.order_key[todo], kind="stable")]
        plan: dict[str, str] = {}
        for i in todo:
            target = self._target(int(i), alive, used, groups)
            if target < 0:
                lost.append(self.vm_names[i])
                continue
            used[target] += self.demand[i]
            for g in self.vm_groups[i]:
                groups[g, target] += 1
            plan[self.vm_names[i]] = self.host_names[target]
        names = tuple(self.host_names[h] for h in failed)
        return FailoverResult(names, plan, tuple(lost), unprotected)

    def _target(self, i: int, alive: BoolArray, used: FloatArray, groups: FloatArray) -> int:
        ok = alive & self.compat[i] & np.all(used + self.demand[i] <= self.cap + EPS, axis=1)
        for g in self.vm_groups[i]:
            ok &= groups[g] <= 0
        if not ok.any():
            return -1
        free_mem = np.where(ok, self.cap[:, MEM] - used[:, MEM], -np.inf)
        return int(np.argmax(free_mem))


def _compat_matrix(fleet: Fleet, vms: Sequence[VM]) -> BoolArray:
    """(VMs x hosts): CPU model/features and vCPUs <= threads, once per requirement class."""
    cache: dict[tuple[frozenset[str], str | None, int], BoolArray] = {}
    rows: list[BoolArray] = []
    for v in vms:
        key = (v.required_features, v.cpu_model, v.vcpus)
        if key not in cache:
            cache[key] = np.array(
                [
                    h.threads >= v.vcpus
                    and v.required_features <= h.features
                    and (v.cpu_model is None or v.cpu_model == h.cpu_model)
                    for h in fleet.hosts
                ],
                dtype=np.bool_,
            )
        rows.append(cache[key])
    return np.array(rows, dtype=np.bool_).reshape(len(rows), len(fleet.hosts))
