"""The fleet as numpy arrays: what each host offers and what is already used.

Planning decisions are made over thousands of hosts at once, so capacities and
usage live in ``(hosts, 4)`` matrices whose columns are :data:`RESOURCES`.
A :class:`ClusterState` is mutable (engines add and remove VMs while they
search) and cheap to :meth:`copy`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from corral.engines.planning.model import VM, Fleet, Host

#: Columns of the capacity and usage matrices.
RESOURCES: tuple[str, ...] = (
    "vcpus",
    "memory_mib",
    "cpu_reservation_mhz",
    "memory_reservation_mib",
)
VCPU, MEM, RES_MHZ, RES_MIB = range(4)
#: Hours in the peak profile kept per host (hourly maxima of the utilization series).
PROFILE_BUCKETS = 24
EPS = 1e-9

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.intp]


def demand_of(vm: VM) -> FloatArray:
    """What a VM takes from its host, in the :data:`RESOURCES` columns."""
    return np.array(
        [vm.vcpus, vm.memory_mib, vm.cpu_reservation_mhz, vm.memory_reservation_mib],
        dtype=np.float64,
    )


def capacity_of(host: Host, cpu_ratio: float, ram_ratio: float) -> FloatArray:
    """What a host offers: overcommitted vCPUs and memory, physical MHz and MiB for reservations."""
    return np.array(
        [
            host.threads * cpu_ratio,
            host.memory_mib * ram_ratio,
            host.cpu_capacity_mhz,
            host.memory_mib,
        ],
        dtype=np.float64,
    )


def hourly_peaks(series: Iterable[float]) -> FloatArray:
    """Fold a utilization series onto :data:`PROFILE_BUCKETS` buckets, keeping each bucket's max."""
    values = np.asarray(list(series), dtype=np.float64)
    buckets = (np.arange(values.size) * PROFILE_BUCKETS) // max(values.size, 1)
    out = np.zeros(PROFILE_BUCKETS)
    np.maximum.at(out, buckets, values)
    if values.size < PROFILE_BUCKETS:  # short series: spread the samples over the day
        idx = (np.arange(PROFILE_BUCKETS) * values.size) // PROFILE_BUCKETS
        out = values[idx]
    return out


@dataclass
class ClusterState:
    """Hosts, their capacity, and the running VMs placed on them."""

    fleet: Fleet
    host_names: tuple[str, ...]
    index: dict[str, int]
    cap: FloatArray
    used: FloatArray
    threads: FloatArray
    placement: dict[str, int]
    vm_by_name: dict[str, VM]
    anti_affinity: dict[str, FloatArray]
    affinity: dict[str, FloatArray]
    profiles: dict[str, FloatArray]
    host_profile: FloatArray
    disabled: BoolArray
    by_host: dict[int, set[str]]
    #: Sum of the K largest capacities per set of enabled hosts (capacities never change).
    reserve_cache: dict[tuple[int, bytes], FloatArray] = field(default_factory=dict)

    @classmethod
    def from_fleet(cls, fleet: Fleet) -> ClusterState:
        """Build the state with every running, placed VM of the fleet on its host."""
        s = fleet.settings
        n = len(fleet.hosts)
        cap = np.array(
            [capacity_of(h, s.cpu_allocation_ratio, s.ram_allocation_ratio) for h in fleet.hosts],
            dtype=np.float64,
        ).reshape(n, len(RESOURCES))
        state = cls(
            fleet=fleet,
            host_names=tuple(h.name for h in fleet.hosts),
            index={h.name: i for i, h in enumerate(fleet.hosts)},
            cap=cap,
            used=np.zeros_like(cap),
            threads=np.array([h.threads for h in fleet.hosts], dtype=np.float64),
            placement={},
            vm_by_name={v.name: v for v in fleet.vms},
            anti_affinity=defaultdict(lambda: np.zeros(n)),
            affinity=defaultdict(lambda: np.zeros(n)),
            profiles={k: hourly_peaks(v) for k, v in fleet.profiles.items()},
            host_profile=np.zeros((n, PROFILE_BUCKETS)),
            disabled=np.zeros(n, dtype=np.bool_),
            by_host=defaultdict(set),
        )
        for vm in fleet.vms:
            if vm.host is not None and vm.running:
                state.add(vm, state.index[vm.host])
        return state

    def rebased(self, fleet: Fleet, whole_above: float = 0.25) -> ClusterState:
        """The state of ``fleet``, equal to ``from_fleet(fleet)``, made from this one when only
        VMs changed (the same hosts, settings and profiles): the VMs that are not the very
        objects of this state's fleet are taken off and put on again, on a copy. A live
        fleet re-read keeps the VM objects of the hosts it did not read again, so a change on
        a few hosts costs a copy and those hosts' VMs, not a whole rebuild.

        ``self`` must be as ``from_fleet`` built it (a base state, never searched on). When
        more than ``whole_above`` of the VMs (before and after) changed, building whole is
        cheaper.
        """
        old = self.fleet
        if (fleet.hosts, fleet.settings, fleet.profiles) != (old.hosts, old.settings, old.profiles):
            return ClusterState.from_fleet(fleet)
        now = {id(v) for v in fleet.vms}
        gone = [v for v in old.vms if id(v) not in now]
        before = {id(v) for v in old.vms}
        new = [v for v in fleet.vms if id(v) not in before]
        if len(gone) + len(new) > whole_above * (len(old.vms) + len(fleet.vms)):
            return ClusterState.from_fleet(fleet)
        state = self.copy()
        state.fleet = fleet
        for vm in gone:
            if vm.name in state.placement:
                state.remove(vm.name)
            del state.vm_by_name[vm.name]
        for vm in new:
            state.vm_by_name[vm.name] = vm
            if vm.host is not None and vm.running:
                state.add(vm, state.index[vm.host])
        return state

    @property
    def n_hosts(self) -> int:
        return len(self.host_names)

    @property
    def free(self) -> FloatArray:
        return self.cap - self.used

    def fits(self, vm: VM) -> BoolArray:
        """Hosts with room for ``vm`` in every resource."""
        need = demand_of(vm)
        ok = np.ones(self.n_hosts, dtype=np.bool_)
        for r in np.flatnonzero(need > 0):
            ok &= self.used[:, r] <= self.cap[:, r] - need[r] + EPS
        return ok

    def add(self, vm: VM, host: int) -> None:
        self.vm_by_name[vm.name] = vm
        self.placement[vm.name] = host
        self.by_host[host].add(vm.name)
        self.used[host] += demand_of(vm)
        for g in vm.anti_affinity:
            self.anti_affinity[g][host] += 1
        for g in vm.affinity:
            self.affinity[g][host] += 1
        if vm.profile is not None:
            self.host_profile[host] += vm.vcpus * self.profiles[vm.profile]

    def remove(self, vm_name: str) -> int:
        """Take a VM off its host; returns the host index it was on."""
        host = self.placement.pop(vm_name)
        self.by_host[host].discard(vm_name)
        vm = self.vm_by_name[vm_name]
        self.used[host] -= demand_of(vm)
        for g in vm.anti_affinity:
            self.anti_affinity[g][host] -= 1
        for g in vm.affinity:
            self.affinity[g][host] -= 1
        if vm.profile is not None:
            self.host_profile[host] -= vm.vcpus * self.profiles[vm.profile]
        return host

    def move(self, vm_name: str, host: int) -> None:
        vm = self.vm_by_name[vm_name]
        self.remove(vm_name)
        self.add(vm, host)

    def vms_on(self, host: int) -> list[VM]:
        return [self.vm_by_name[n] for n in sorted(self.by_host.get(host, ()))]

    def active_hosts(self) -> BoolArray:
        """Hosts running at least one VM."""
        return np.array([bool(self.by_host.get(i)) for i in range(self.n_hosts)], dtype=np.bool_)

    def copy(self) -> ClusterState:
        n = self.n_hosts
        aa: dict[str, FloatArray] = defaultdict(lambda: np.zeros(n))
        aa.update({k: v.copy() for k, v in self.anti_affinity.items()})
        af: dict[str, FloatArray] = defaultdict(lambda: np.zeros(n))
        af.update({k: v.copy() for k, v in self.affinity.items()})
        return ClusterState(
            fleet=self.fleet,
            host_names=self.host_names,
            index=self.index,
            cap=self.cap,
            used=self.used.copy(),
            threads=self.threads,
            placement=dict(self.placement),
            vm_by_name=dict(self.vm_by_name),
            anti_affinity=aa,
            affinity=af,
            profiles=self.profiles,
            host_profile=self.host_profile.copy(),
            disabled=self.disabled.copy(),
            by_host=defaultdict(set, {h: set(v) for h, v in self.by_host.items()}),
            reserve_cache=self.reserve_cache,
        )

    def overloaded_hosts(self) -> list[str]:
        """Hosts whose usage exceeds capacity in some resource (should always be empty)."""
        bad = np.any(self.used > self.cap + EPS, axis=1)
        return [self.host_names[i] for i in np.flatnonzero(bad)]
