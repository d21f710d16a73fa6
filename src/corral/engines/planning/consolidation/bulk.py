"""Bulk packing: place a whole fleet's VMs at once on as few hosts as possible.

Used for initial placement and full repacks of large fleets (100,000 VMs),
where deciding VM by VM with the general scheduler would be too slow. VMs go
host by host (bin-centric): each host, largest first, is filled with the VM
whose demand vector has the largest dot product with the host's remaining
capacity (both as fractions of the host), until nothing more fits. That is the
"dot-product" heuristic of Panigrahy et al., "Heuristics for Vector Bin
Packing" (Microsoft Research, 2011): it pairs memory-heavy with CPU-heavy VMs
where first-fit decreasing strands one resource. VMs with equal demand and
requirements form a class, so each step scores classes, not VMs (numpy over
classes). A VM never joins a host holding a member of its anti-affinity groups
or an incompatible CPU.

The N+K reserve is kept as K empty hosts, chosen among the largest: any K
failed hosts' VMs then restart host-for-host on them, which keeps capacity and
anti-affinity (the VMs of one host share no group). So that this holds on
mixed hosts too, no host is loaded beyond the smallest reserve host in any
resource, and VMs a reserve host could not run (CPU features, threads) are
counted in ``reserve_incompatible``. A sufficient condition, stronger than the
aggregate test, that costs exactly K hosts.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from corral.engines.planning.consolidation.bounds import LowerBound, host_lower_bound
from corral.engines.planning.model import VM, Fleet
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
from corral.errors import ValidationError


@dataclass(frozen=True)
class BulkResult:
    target: dict[str, str]
    hosts_used: int
    reserve_hosts: tuple[str, ...]
    unplaced: tuple[str, ...]
    lower_bound: LowerBound
    #: Placed VMs that some reserve host could not restart (features, threads).
    reserve_incompatible: tuple[str, ...] = ()

    @property
    def hosts_with_reserve(self) -> int:
        return self.hosts_used + len(self.reserve_hosts)

    @property
    def ratio_to_bound(self) -> float:
        return self.hosts_with_reserve / max(self.lower_bound.hosts, 1)


def _compat(state: ClusterState, vm: VM, cache: dict[tuple[object, ...], BoolArray]) -> BoolArray:
    key = (vm.required_features, vm.cpu_model, vm.vcpus)
    if key not in cache:
        cache[key] = np.array(
            [
                h.threads >= vm.vcpus
                and vm.required_features <= h.features
                and (vm.cpu_model is None or vm.cpu_model == h.cpu_model)
                for h in state.fleet.hosts
            ],
            dtype=np.bool_,
        )
    return cache[key]


def pack(fleet: Fleet, failures: int | None = None) -> BulkResult:
    """Place every running VM of the fleet (current hosts ignored) with an N+K reserve."""
    k = fleet.settings.ha_host_failures if failures is None else failures
    state = ClusterState.from_fleet(fleet.with_vms([]))
    if k >= state.n_hosts:
        raise ValidationError(f"An N+{k} reserve needs more than {state.n_hosts} hosts.")
    feats = np.array([len(h.features) for h in fleet.hosts], dtype=np.float64)
    # reserve: the largest hosts; among equals the one with the fewest features, so the
    # rare capable hosts stay available to the VMs that need them
    by_size = np.lexsort((feats, -state.cap[:, VCPU], -state.cap[:, MEM]))
    reserve: IntArray = by_size[:k]
    hosts: IntArray = by_size[k:]  # open in this order: largest first
    vms = [v for v in fleet.vms if v.running]
    limit = state.cap[reserve].min(axis=0) if k else np.full(state.cap.shape[1], np.inf)
    items, conflicted = _items(state, vms)
    target, unplaced = _fill_hosts(state, items, hosts, limit)
    unplaced += conflicted
    used = len(set(target.values()))
    cache: dict[tuple[object, ...], BoolArray] = {}
    misfits = tuple(
        v.name for v in vms if v.name in target and not _compat(state, v, cache)[reserve].all()
    )
    return BulkResult(
        target=target,
        hosts_used=used,
        reserve_hosts=tuple(state.host_names[i] for i in reserve),
        unplaced=tuple(unplaced),
        lower_bound=host_lower_bound(fleet, k),
        reserve_incompatible=misfits,
    )


ClassKey = tuple[float, float, float, float, int]


@dataclass(frozen=True)
class _Item:
    """What is packed: one VM, or an affinity group that must share a host."""

    members: tuple[VM, ...]
    demand: FloatArray
    anti_affinity: frozenset[str]
    compat: BoolArray
    priority: int


def _items(state: ClusterState, vms: list[VM]) -> tuple[list[_Item], list[str]]:
    """Merge VMs linked by affinity groups; a group that is also anti-affine is unplaceable."""
    parent = list(range(len(vms)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[str, int] = {}
    for i, v in enumerate(vms):
        for g in v.affinity:
            parent[root(i)] = root(first.setdefault(g, i))
    groups: dict[int, list[VM]] = {}
    for i, v in enumerate(vms):
        groups.setdefault(root(i) if v.affinity else i, []).append(v)
    cache: dict[tuple[object, ...], BoolArray] = {}
    items: list[_Item] = []
    conflicted: list[str] = []
    for members in groups.values():
        if len(members) == 1:  # the common case, kept cheap
            v = members[0]
            compat = _compat(state, v, cache)
            anti_set = frozenset(v.anti_affinity)
            items.append(_Item((v,), demand_of(v), anti_set, compat, v.priority))
            continue
        anti = [g for v in members for g in v.anti_affinity]
        if len(anti) != len(set(anti)):
            conflicted += [v.name for v in members]
            continue
        masks = [_compat(state, v, cache) for v in members]
        compat = masks[0] if len(masks) == 1 else np.logical_and.reduce(masks)
        demand = np.sum([demand_of(v) for v in members], axis=0)
        prio = max(v.priority for v in members)
        items.append(_Item(tuple(members), demand, frozenset(anti), compat, prio))
    return items, conflicted


@dataclass
class _Classes:
    """Items grouped by demand and compatible hosts; each class is a queue of item indices."""

    need: FloatArray
    queues: list[deque[int]]
    compat: BoolArray  # classes x hosts
    count: FloatArray
    #: Large for classes few hosts can take: they go first while those hosts have room.
    scarcity: FloatArray

    @classmethod
    def build(cls, state: ClusterState, items: list[_Item]) -> _Classes:
        keys: dict[ClassKey, int] = {}
        queues: list[deque[int]] = []
        rows: list[FloatArray] = []
        compat: list[BoolArray] = []
        order = sorted(
            range(len(items)), key=lambda i: (-items[i].priority, not items[i].anti_affinity)
        )
        for i in order:
            item = items[i]
            d = item.demand
            # the compat masks of single VMs are shared per requirement class, so id() groups them
            key: ClassKey = (*(float(x) for x in d), id(item.compat))  # type: ignore[assignment]
            if key not in keys:
                keys[key] = len(queues)
                queues.append(deque())
                rows.append(d)
                compat.append(item.compat)
            queues[keys[key]].append(i)
        n = len(queues)
        mask = np.array(compat, dtype=np.bool_).reshape(n, state.n_hosts)
        return cls(
            need=np.array(rows, dtype=np.float64).reshape(n, 4),
            queues=queues,
            compat=mask,
            count=np.array([len(q) for q in queues], dtype=np.float64),
            scarcity=SCARCITY_WEIGHT * (1.0 - mask.mean(axis=1)),
        )

    def take(self, c: int, items: list[_Item], taken_groups: set[str]) -> int:
        """Pop the first item of class ``c`` sharing no group with the host; -1 if none."""
        q = self.queues[c]
        skipped: list[int] = []
        found = -1
        while q:
            i = q.popleft()
            if taken_groups.isdisjoint(items[i].anti_affinity):
                found = i
                break
            skipped.append(i)
        q.extendleft(reversed(skipped))
        if found >= 0:
            self.count[c] -= 1
        return found


def _fill_hosts(
    state: ClusterState, items: list[_Item], hosts: IntArray, limit: FloatArray
) -> tuple[dict[str, str], list[str]]:
    classes = _Classes.build(state, items)
    target: dict[str, str] = {}
    for h in hosts:
        if not classes.count.any():
            break
        for i in _fill_one(state, int(h), classes, items, limit):
            for vm in items[i].members:
                target[vm.name] = state.host_names[int(h)]
    unplaced = [vm.name for q in classes.queues for i in q for vm in items[i].members]
    return target, unplaced


#: Bonus for VMs few hosts can take (scaled by the share of hosts that cannot).
SCARCITY_WEIGHT = 100.0
#: Weight of the balance term against VM size when choosing the next VM for a host.
BALANCE_WEIGHT = 10.0


def _fill_one(
    state: ClusterState, h: int, classes: _Classes, items: list[_Item], limit: FloatArray
) -> list[int]:
    cap = np.minimum(state.cap[h], limit)
    scale = np.where(cap > 0, 1.0 / np.maximum(cap, EPS), 0.0)
    left = cap.copy()
    remaining = (classes.count @ classes.need) * scale
    ratio = remaining[VCPU] / max(remaining[MEM], EPS)
    size = (classes.need * scale)[:, [VCPU, MEM]].sum(axis=1)
    groups: set[str] = set()
    blocked = ~classes.compat[:, h]
    placed: list[int] = []
    while True:
        ok = (classes.count > 0) & ~blocked & np.all(classes.need <= left + EPS, axis=1)
        if not ok.any():
            return placed
        fill = (cap - left + classes.need) * scale
        skew = np.abs(fill[:, VCPU] - ratio * fill[:, MEM])
        score = np.where(ok, size - BALANCE_WEIGHT * skew + classes.scarcity, -np.inf)
        c = int(np.argmax(score))
        i = classes.take(c, items, groups)
        if i < 0:
            blocked[c] = True
            continue
        left -= classes.need[c]
        groups.update(items[i].anti_affinity)
        placed.append(i)
