"""Restart simulation: where the VMs of failed hosts go, and which do not come back.

Built for thousands of failure scenarios: the fleet is turned once into arrays
(:class:`FailoverModel`); each scenario then restarts the failed hosts' protected
VMs in priority order (replicated first, then larger memory first), each on the
compatible surviving host with the most free memory that has room in every
resource and holds no member of its anti-affinity groups. Affinity is treated
as a preference and not enforced during failover.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from corral.engines.planning.model import VM, Fleet, Protection
from corral.engines.planning.state import (
    EPS,
    MEM,
    VCPU,
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
    #: Host compatibility per requirement class (classes x hosts) and each VM's class: a
    #: (VMs x hosts) matrix was 1 GB at 100,000 VMs on 10,000 hosts.
    compat_rows: BoolArray
    compat_class: IntArray
    vm_groups: tuple[tuple[int, ...], ...]
    group_count: FloatArray
    by_host: tuple[IntArray, ...]
    #: Per VM, the resource columns it actually needs (skips zero reservations).
    columns: tuple[tuple[int, ...], ...] = ()
    #: VMs with no group, no CPU requirement and no reservation: the heap fast path.
    simple: tuple[bool, ...] = ()
    cpu_need: list[float] = field(default_factory=list)
    mem_need: list[float] = field(default_factory=list)
    _singles: dict[int, _SinglePlan] = field(default_factory=dict)
    _index: dict[str, int] = field(default_factory=dict)
    _heap: _MemoryHeap | None = None
    _free_rows: FloatArray | None = None
    _free_lists: tuple[list[float], list[float]] | None = None
    _has_group: BoolArray | None = None

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
        compat_rows, compat_class = _compat_classes(fleet, vms)
        everywhere: BoolArray = np.asarray(compat_rows.all(axis=1), dtype=np.bool_)
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
            compat_rows=compat_rows,
            compat_class=compat_class,
            vm_groups=vm_groups,
            group_count=group_count,
            by_host=_group_by_host(vm_host, state.n_hosts),
            columns=tuple(tuple(int(r) for r in np.flatnonzero(d > 0)) for d in demand),
            simple=tuple(
                not v.anti_affinity
                and not v.required_features
                and v.cpu_model is None
                and not v.cpu_reservation_mhz
                and not v.memory_reservation_mib
                and bool(everywhere[compat_class[i]])
                for i, v in enumerate(vms)
            ),
            cpu_need=demand[:, VCPU].tolist(),
            mem_need=demand[:, MEM].tolist(),
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
        free = self._base_free().copy()
        groups = _Groups(self.group_count, failed)
        victims = self.vms_of(failed)
        unprotected = tuple(self.vm_names[i] for i in victims if not self.restartable[i])
        todo = victims[self.restartable[victims]]
        todo = todo[np.argsort(self.order_key[todo], kind="stable")]
        heap = self._base_heap(failed) if receivers is None else _MemoryHeap(free[MEM], alive)
        plan, lost = self._restart(todo.tolist(), alive, free, groups, heap)
        names = tuple(self.host_names[h] for h in failed)
        return FailoverResult(names, plan, tuple(lost), unprotected)

    def _restart(
        self,
        todo: list[int],
        alive: BoolArray,
        free: FloatArray,
        groups: _Groups,
        heap: _MemoryHeap,
    ) -> tuple[dict[str, str], list[str]]:
        """Place ``todo`` in order; simple VMs via the heap on plain lists, others via numpy."""
        plan: dict[str, str] = {}
        lost: list[str] = []
        base_cpu, base_mem = self._base_lists()
        cpu, mem = base_cpu.copy(), base_mem.copy()  # list copies: cheaper than tolist()
        best, push, most_free = heap.best, heap.push, heap.most_free
        simple, cpu_need, mem_need = self.simple, self.cpu_need, self.mem_need
        vm_names, host_names = self.vm_names, self.host_names
        synced = True
        for i in todo:
            need_cpu, need_mem = cpu_need[i], mem_need[i]
            if simple[i]:
                target = best(cpu, mem, need_cpu, need_mem)
                synced = False
            elif most_free(mem) < need_mem - EPS:
                target = -1  # no alive host has the memory: skip the full scan
            else:
                if not synced:
                    free[VCPU], free[MEM] = cpu, mem
                    synced = True
                target = self._target(i, alive, free, groups)
                if target >= 0:
                    free[:, target] -= self.demand[i]
                    for g in self.vm_groups[i]:
                        groups.add(g, target)
            if target < 0:
                lost.append(vm_names[i])
                continue
            cpu[target] -= need_cpu
            mem[target] -= need_mem
            push(mem, target)
            plan[vm_names[i]] = host_names[target]
        return plan, lost

    def _target(self, i: int, alive: BoolArray, free: FloatArray, groups: _Groups) -> int:
        ok = alive & self.compat_rows[self.compat_class[i]]
        d = self.demand[i]
        for r in self.columns[i]:
            ok &= free[r] >= d[r] - EPS
        for g in self.vm_groups[i]:
            ok &= groups.row(g) <= 0
        if not ok.any():
            return -1
        return int(np.argmax(np.where(ok, free[MEM], -np.inf)))

    def survives(self, failed: Sequence[int]) -> FailoverResult | None:
        """Cheap exact test: can the single-host failover plans of ``failed`` be combined?

        Keep each single-host plan's moves except those aimed at another failed
        host; if the kept moves fit together (capacity, anti-affinity) and the few
        VMs left over find room on top of them, every protected VM restarts, so
        the scenario is safe and the combined plan is returned. None means "not
        shown here": run :meth:`simulate`.
        """
        combined = self._combine(failed)
        if combined is None:
            return None
        moves, plans = combined
        plan = {self.vm_names[i]: self.host_names[t] for i, t in moves}
        unprotected = tuple(u for p in plans for u in p.result.unprotected)
        return FailoverResult(tuple(self.host_names[h] for h in failed), plan, (), unprotected)

    def proven_safe(self, failed: Sequence[int]) -> bool:
        """True when ``failed`` is shown safe without simulating it: by :meth:`fits_on_one`
        or by combining the single-host plans (:meth:`survives`, without building its plan).
        False means "not shown here", not "unsafe"."""
        return self.fits_on_one(failed) or self._combine(failed) is not None

    def fits_on_one(self, failed: Sequence[int]) -> bool:
        """The bound: every protected VM of ``failed`` is a simple one (no anti-affinity, no
        CPU requirement, no reservation) and one surviving host has room for all of them
        together. The worst-fit restart then never fails: whichever host it picks, that
        host still has room for every VM not yet placed, so a VM always finds one."""
        victims = self.vms_of(failed)
        victims = victims[self.restartable[victims]]
        if not all(self.simple[i] for i in victims.tolist()):
            return False
        need = self.demand[victims].sum(axis=0)
        room = self._base_free().copy()
        room[:, list(failed)] = -np.inf
        return bool(np.all(room >= need[:, None] - EPS, axis=0).any())

    def _combine(
        self, failed: Sequence[int]
    ) -> tuple[list[tuple[int, int]], list[_SinglePlan]] | None:
        """The single-host plans of ``failed`` combined, as (VM, host) moves; None when they
        do not combine (see :meth:`survives`)."""
        plans = [self.single(h) for h in failed]
        if not all(p.result.ok for p in plans):
            return None
        dead = np.zeros(len(self.host_names), dtype=np.bool_)
        dead[list(failed)] = True
        vms = np.concatenate([p.vms for p in plans])
        targets = np.concatenate([p.targets for p in plans])
        keep = ~dead[targets]
        free = self.cap - self.used
        np.subtract.at(free, targets[keep], self.demand[vms[keep]])
        if np.any(free[~dead] < -EPS):
            return None
        groups = _Groups(self.group_count, list(failed))
        grouped = keep & self._grouped()[vms]  # only VMs in a group can break anti-affinity
        for i, t in zip(vms[grouped].tolist(), targets[grouped].tolist(), strict=True):
            for g in self.vm_groups[i]:
                if groups.at(g, t) > 0:
                    return None
                groups.add(g, t)
        rows = np.ascontiguousarray(free.T)
        moves = list(zip(vms[keep].tolist(), targets[keep].tolist(), strict=True))
        for i in vms[~keep][np.argsort(self.order_key[vms[~keep]], kind="stable")]:
            t = self._target(int(i), ~dead, rows, groups)
            if t < 0:
                return None
            rows[:, t] -= self.demand[i]
            for g in self.vm_groups[i]:
                groups.add(g, t)
            moves.append((int(i), t))
        return moves, plans

    def _grouped(self) -> BoolArray:
        if self._has_group is None:
            self._has_group = np.array([bool(g) for g in self.vm_groups], dtype=np.bool_)
        return self._has_group

    def single(self, host: int) -> _SinglePlan:
        """The failover of one host, simulated once and cached."""
        cached = self._singles.get(host)
        if cached is None:
            result = self.simulate([host])
            index = self._host_index()
            vms = np.array(
                [i for i in self.by_host[host] if self.vm_names[i] in result.plan], dtype=np.intp
            )
            targets = np.array([index[result.plan[self.vm_names[i]]] for i in vms], dtype=np.intp)
            cached = _SinglePlan(result, vms, targets)
            self._singles[host] = cached
        return cached

    def _base_free(self) -> FloatArray:
        """Free room of every host before any failure, as (resources, hosts) rows."""
        if self._free_rows is None:
            self._free_rows = np.ascontiguousarray((self.cap - self.used).T)
        return self._free_rows

    def _base_lists(self) -> tuple[list[float], list[float]]:
        if self._free_lists is None:
            rows = self._base_free()
            self._free_lists = (rows[VCPU].tolist(), rows[MEM].tolist())
        return self._free_lists

    def _host_index(self) -> dict[str, int]:
        if len(self._index) != len(self.host_names):
            self._index.update((n, i) for i, n in enumerate(self.host_names))
        return self._index

    def _base_heap(self, failed: Sequence[int]) -> _MemoryHeap:
        """Every host by free memory, heapified once and copied per scenario (the failed
        hosts' entries are skipped when met): building it anew cost O(hosts) each time."""
        if self._heap is None:
            everyone = np.ones(len(self.host_names), dtype=np.bool_)
            self._heap = _MemoryHeap(np.asarray(self.cap - self.used)[:, MEM], everyone)
        alive = list(self._heap.alive)
        for h in failed:
            alive[h] = False
        return self._heap.copy(alive)


class _Groups:
    """Anti-affinity group members per host in one scenario: the model's (groups x hosts)
    counts with the failed hosts emptied, changed copy-on-write one group row at a time.

    Copying the whole matrix per scenario cost O(groups x hosts): 80 MB a scenario with
    1,000 groups on 10,000 hosts.
    """

    def __init__(self, base: FloatArray, failed: Sequence[int]) -> None:
        self.base = base
        self.failed = list(failed)
        self.rows: dict[int, FloatArray] = {}

    def row(self, g: int) -> FloatArray:
        got = self.rows.get(g)
        if got is None:
            got = self.base[g].copy()
            got[self.failed] = 0
            self.rows[g] = got
        return got

    def at(self, g: int, h: int) -> float:
        return float(self.row(g)[h])

    def add(self, g: int, h: int) -> None:
        self.row(g)[h] += 1


class _MemoryHeap:
    """Alive hosts by free memory (max first), for the worst-fit choice without a full scan.

    Entries go stale when a host's free memory changes; a stale entry is skipped
    when popped. Picks the same host as ``argmax`` over free memory among hosts
    with room (ties to the lowest index).
    """

    def __init__(self, mem: FloatArray | list[float], alive: BoolArray | None) -> None:
        self.heap: list[tuple[float, int]] = []
        self.alive: list[bool] = []
        if alive is not None:
            free = np.asarray(mem, dtype=float).tolist()
            self.heap = [(-free[h], h) for h in np.flatnonzero(alive).tolist()]
            heapq.heapify(self.heap)
            self.alive = alive.tolist()

    def copy(self, alive: list[bool]) -> _MemoryHeap:
        """This heap for a scenario where only ``alive`` hosts receive (others are skipped)."""
        other = _MemoryHeap([], None)
        other.heap, other.alive = list(self.heap), alive
        return other

    def push(self, mem: list[float], host: int) -> None:
        if self.alive[host]:
            heapq.heappush(self.heap, (-mem[host], host))

    def _fresh(self, mem: list[float]) -> bool:
        """Drop stale or dead entries from the top; whether an entry is left."""
        heap, alive = self.heap, self.alive
        while heap and (not alive[heap[0][1]] or -heap[0][0] != mem[heap[0][1]]):
            heapq.heappop(heap)
        return bool(heap)

    def most_free(self, mem: list[float]) -> float:
        """The largest free memory of any alive host (-inf if none)."""
        return -self.heap[0][0] if self._fresh(mem) else float("-inf")

    def best(self, cpu: list[float], mem: list[float], need_cpu: float, need_mem: float) -> int:
        """Host with the most free memory that also has ``need_cpu`` vCPUs free; -1 if none."""
        skipped: list[tuple[float, int]] = []
        found = -1
        heap, alive = self.heap, self.alive
        while heap:
            key, h = heap[0]
            if not alive[h] or -key != mem[h]:
                heapq.heappop(heap)  # stale, or a host that is down in this scenario
                continue
            if -key < need_mem - EPS:
                break  # nobody has enough memory
            heapq.heappop(heap)
            skipped.append((key, h))
            if cpu[h] >= need_cpu - EPS:
                found = h
                break
        for entry in skipped:
            if entry[1] != found:
                heapq.heappush(heap, entry)
        return found


@dataclass(frozen=True)
class _SinglePlan:
    result: FailoverResult
    vms: IntArray
    targets: IntArray


def _compat_classes(fleet: Fleet, vms: Sequence[VM]) -> tuple[BoolArray, IntArray]:
    """Rows (requirement classes x hosts: CPU model/features, vCPUs <= threads) and each
    VM's row; a class is computed once."""
    index: dict[tuple[frozenset[str], str | None, int], int] = {}
    rows: list[BoolArray] = []
    of_vm = np.empty(len(vms), dtype=np.intp)
    for i, v in enumerate(vms):
        key = (v.required_features, v.cpu_model, v.vcpus)
        row = index.get(key)
        if row is None:
            row = index[key] = len(rows)
            rows.append(
                np.array(
                    [
                        h.threads >= v.vcpus
                        and v.required_features <= h.features
                        and (v.cpu_model is None or v.cpu_model == h.cpu_model)
                        for h in fleet.hosts
                    ],
                    dtype=np.bool_,
                )
            )
        of_vm[i] = row
    table = np.array(rows, dtype=np.bool_).reshape(len(rows), len(fleet.hosts))
    return table, of_vm


def _group_by_host(vm_host: IntArray, n_hosts: int) -> tuple[IntArray, ...]:
    """Each host's VM indices (ascending), in one sort rather than a scan per host."""
    order = np.argsort(vm_host, kind="stable")
    bounds = np.cumsum(np.bincount(vm_host, minlength=n_hosts))[:-1]
    return tuple(np.split(order, bounds)) if n_hosts else ()
