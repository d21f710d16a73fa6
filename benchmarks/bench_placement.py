"""Placement benchmark: bulk packing of 100,000 VMs, and single decisions among 10,000 hosts.

    .venv/bin/python benchmarks/bench_placement.py [--small]

Fixed seeded input: 10,000 identical hosts (32 cores x 2 threads, 384 GiB,
cpu_allocation_ratio 2.0), 100,000 VMs from a 9-flavor mix (memory binds,
vCPUs ~85 %), 2,000 anti-affinity groups of 2-12 VMs, N+1 reserve. Prints
time, hosts used, the valid lower bound and the ratio, with every plan checked
for overcommit and anti-affinity; then the latency of single placement
decisions on the packed fleet.
"""

from __future__ import annotations

import argparse
import random
import time
from collections import defaultdict
from dataclasses import replace

import numpy as np

from corral.engines.planning import VM, Fleet, Host, Settings
from corral.engines.planning.consolidation.bulk import pack
from corral.engines.planning.placement.scheduler import Scheduler
from corral.engines.planning.state import ClusterState

FLAVORS = [  # (vcpus, memory_mib, weight)
    (1, 2048, 15),
    (2, 4096, 25),
    (2, 8192, 10),
    (4, 8192, 20),
    (4, 16384, 10),
    (8, 16384, 8),
    (8, 65536, 5),
    (16, 32768, 4),
    (16, 131072, 3),
]


def make_fleet(n_hosts: int, n_vms: int, n_groups: int, seed: int = 42) -> Fleet:
    rng = random.Random(seed)
    hosts = tuple(
        Host(f"h{i:05d}", cores=32, cpu_mhz=2600, memory_mib=393216, threads_per_core=2)
        for i in range(n_hosts)
    )
    weights = [f[2] for f in FLAVORS]
    flavors = rng.choices(FLAVORS, weights=weights, k=n_vms)
    groups: dict[int, list[str]] = defaultdict(list)
    members = rng.sample(range(n_vms), k=min(n_vms, n_groups * 7))
    pos = 0
    for g in range(n_groups):
        size = rng.randint(2, 12)
        for idx in members[pos : pos + size]:
            groups[idx].append(f"aa{g}")
        pos += size
    vms = tuple(
        VM(f"vm{i:06d}", f[0], f[1], anti_affinity=tuple(groups.get(i, ())))
        for i, f in enumerate(flavors)
    )
    return Fleet(hosts, vms, Settings(cpu_allocation_ratio=2.0, ha_host_failures=1))


def check_plan(fleet: Fleet, target: dict[str, str], reserve: tuple[str, ...]) -> str:
    """Re-verify the plan independently: no overcommit, anti-affinity kept, reserve hosts empty."""
    placed = fleet.with_vms(
        [replace(v, host=target[v.name]) for v in fleet.vms if v.name in target]
    )
    state = ClusterState.from_fleet(placed)
    if state.overloaded_hosts():
        return "OVERCOMMIT"
    if any((members > 1).any() for members in state.anti_affinity.values()):
        return "ANTI-AFFINITY BROKEN"
    if any(h in set(target.values()) for h in reserve):
        return "RESERVE USED"
    return "valid"


def bench_bulk(n_hosts: int, n_vms: int, n_groups: int) -> Fleet:
    fleet = make_fleet(n_hosts, n_vms, n_groups)
    t0 = time.perf_counter()
    result = pack(fleet)
    elapsed = time.perf_counter() - t0
    verdict = check_plan(fleet, result.target, result.reserve_hosts)
    print(
        "\nBulk packing (bin-centric, balance-aware, numpy over VM classes); "
        "N+1 reserve = 1 empty host"
    )
    print(
        f"{'VMs':>8} {'hosts':>7} {'groups':>6} {'time_s':>7} {'used+K':>7} {'LB':>6} "
        f"{'ratio':>6} {'LB_vcpu':>7} {'LB_mem':>6} {'LB_aa':>5} {'unplaced':>8}  check"
    )
    lb = result.lower_bound
    print(
        f"{n_vms:>8} {n_hosts:>7} {n_groups:>6} {elapsed:>7.2f} {result.hosts_with_reserve:>7} "
        f"{lb.hosts:>6} {result.ratio_to_bound:>6.4f} {lb.by_resource['vcpus']:>7} "
        f"{lb.by_resource['memory_mib']:>6} {lb.anti_affinity:>5} {len(result.unplaced):>8}  "
        f"{verdict}"
    )
    placed = fleet.with_vms([replace(v, host=result.target.get(v.name)) for v in fleet.vms])
    return placed


def bench_decisions(fleet: Fleet, n: int, seed: int = 7) -> None:
    state = ClusterState.from_fleet(fleet)
    sched = Scheduler.default("spread")
    sched.explain_limit = 10
    rng = random.Random(seed)
    times = []
    placed = 0
    for i in range(n):
        f = rng.choices(FLAVORS, weights=[x[2] for x in FLAVORS])[0]
        group = (f"aa{rng.randrange(2000)}",) if i % 5 == 0 else ()
        vm = VM(f"new{i}", f[0], f[1], anti_affinity=group)
        t0 = time.perf_counter()
        outcome = sched.decide(state, vm)
        times.append(time.perf_counter() - t0)
        if outcome.status == "placed":
            state.add(vm, state.index[outcome.host])  # type: ignore[union-attr]
            placed += 1
    ms = np.array(times) * 1000
    print(
        f"\nSingle placement decisions among {state.n_hosts} hosts "
        f"({len(state.placement)} VMs placed, all filters and weighers, 10 reasons kept)"
    )
    print(f"{'decisions':>9} {'placed':>7} {'p50_ms':>7} {'p90_ms':>7} {'p99_ms':>7} {'max_ms':>7}")
    print(
        f"{n:>9} {placed:>7} {np.percentile(ms, 50):>7.3f} {np.percentile(ms, 90):>7.3f} "
        f"{np.percentile(ms, 99):>7.3f} {ms.max():>7.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", action="store_true", help="10,000 VMs on 1,000 hosts")
    args = parser.parse_args()
    n_hosts, n_vms, n_groups = (1000, 10000, 200) if args.small else (10000, 100000, 2000)
    placed = bench_bulk(n_hosts, n_vms, n_groups)
    bench_decisions(placed, 1000 if args.small else 2000)


if __name__ == "__main__":
    main()
