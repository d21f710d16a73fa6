"""Placement benchmark: bulk packing of 100,000 VMs, and single decisions among 10,000 hosts.

    .venv/bin/python benchmarks/bench_placement.py [--small]

Fixed seeded input: 10,000 identical hosts (32 cores x 2 threads, 384 GiB,
cpu_allocation_ratio 2.0), 100,000 VMs from a 9-flavor mix (memory binds,
vCPUs ~85 %), 2,000 anti-affinity groups of 2-12 VMs, N+1 reserve. Prints
time, hosts used, the valid lower bound and the ratio, with every plan checked
for overcommit and anti-affinity; then the latency of single placement
decisions on the packed fleet; then consolidation of fleets placed by the
spread strategy (heuristic at scale, CP-SAT exact vs heuristic on small fleets).
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import time
from collections import defaultdict
from dataclasses import replace

import numpy as np

from corral.engines.planning import VM, Fleet, Host, Move, Settings, consolidate
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
    t0, c0 = time.perf_counter(), time.process_time()
    result = pack(fleet)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    verdict = check_plan(fleet, result.target, result.reserve_hosts)
    print(
        "\nBulk packing (bin-centric, balance-aware, numpy over VM classes); "
        "N+1 reserve = 1 empty host"
    )
    print(
        f"{'VMs':>8} {'hosts':>7} {'groups':>6} {'wall_s':>7} {'cpu_s':>6} {'used+K':>7} {'LB':>6} "
        f"{'ratio':>6} {'LB_vcpu':>7} {'LB_mem':>6} {'LB_aa':>5} {'unplaced':>8}  check"
    )
    lb = result.lower_bound
    print(
        f"{n_vms:>8} {n_hosts:>7} {n_groups:>6} {elapsed:>7.2f} {cpu:>6.2f} "
        f"{result.hosts_with_reserve:>7} "
        f"{lb.hosts:>6} {result.ratio_to_bound:>6.4f} {lb.by_resource['vcpus']:>7} "
        f"{lb.by_resource['memory_mib']:>6} {lb.anti_affinity:>5} {len(result.unplaced):>8}  "
        f"{verdict}"
    )
    placed = fleet.with_vms([replace(v, host=result.target.get(v.name)) for v in fleet.vms])
    return placed


def bench_decisions(fleet: Fleet, n: int, seed: int = 7) -> None:
    state = ClusterState.from_fleet(fleet)
    gc.collect()
    gc.freeze()  # a long-running scheduler keeps its fleet out of the young GC generations
    sched = Scheduler.default("spread")
    sched.explain_limit = 10
    rng = random.Random(seed)
    times = []
    cpu_times = []
    placed = 0
    for i in range(n):
        f = rng.choices(FLAVORS, weights=[x[2] for x in FLAVORS])[0]
        group = (f"aa{rng.randrange(2000)}",) if i % 5 == 0 else ()
        vm = VM(f"new{i}", f[0], f[1], anti_affinity=group)
        t0, c0 = time.perf_counter(), time.process_time()
        outcome = sched.decide(state, vm)
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)
        if outcome.status == "placed":
            state.add(vm, state.index[outcome.host])  # type: ignore[union-attr]
            placed += 1
    ms = np.array(times) * 1000
    cpu_ms = np.array(cpu_times) * 1000
    print(
        f"\nSingle placement decisions among {state.n_hosts} hosts "
        f"({len(state.placement)} VMs placed, all filters and weighers, 10 reasons kept, "
        "gc.freeze() after loading)"
    )
    print(
        f"{'decisions':>9} {'placed':>7} {'p50_ms':>7} {'p90_ms':>7} {'p99_ms':>7} {'max_ms':>7} "
        f"{'cpu_p50':>7} {'cpu_p99':>7}"
    )
    print(
        f"{n:>9} {placed:>7} {np.percentile(ms, 50):>7.3f} {np.percentile(ms, 90):>7.3f} "
        f"{np.percentile(ms, 99):>7.3f} {ms.max():>7.3f} "
        f"{np.percentile(cpu_ms, 50):>7.3f} {np.percentile(cpu_ms, 99):>7.3f}"
    )


def spread_fleet(n_hosts: int, n_vms: int, seed: int) -> Fleet:
    """A fleet whose VMs were placed one by one with the spread strategy (low packing)."""
    fleet = make_fleet(n_hosts, n_vms, n_vms // 50, seed)
    state = ClusterState.from_fleet(fleet.with_vms([]))
    sched = Scheduler.default("spread", ha_failures=0)
    sched.explain_limit = 0
    where: dict[str, str] = {}
    for vm in fleet.vms:
        outcome = sched.decide(state, vm)
        if outcome.status == "placed":
            state.add(vm, state.index[outcome.host])  # type: ignore[union-attr]
            where[vm.name] = outcome.host  # type: ignore[union-attr]
    return fleet.with_vms([replace(v, host=where.get(v.name)) for v in fleet.vms])


def bench_consolidation(sizes: list[tuple[int, int]], exact_sizes: list[tuple[int, int]]) -> None:
    print("\nConsolidation of spread fleets (N+1 reserve); every plan replayed step by step")
    print(
        f"{'mode':>9} {'hosts':>6} {'VMs':>6} {'time_s':>7} {'before':>6} {'after':>6} "
        f"{'LB':>5} {'ratio':>6} {'migr':>6} {'temp':>5} {'optimal':>7}  check"
    )
    runs = [("heuristic", h, v, s) for h, v in sizes for s in (1,)]
    runs += [
        (m, h, v, s) for h, v in exact_sizes for s in (1, 2, 3) for m in ("heuristic", "exact")
    ]
    for mode, n_hosts, n_vms, seed in runs:
        fleet = spread_fleet(n_hosts, n_vms, seed)
        t0 = time.perf_counter()
        plan = consolidate(fleet, mode, time_limit_s=10.0)
        elapsed = time.perf_counter() - t0  # CP-SAT runs 2 worker threads: wall time only
        verdict = replay_check(fleet, plan.schedule.steps) if plan.schedule.complete else "BLOCKED"
        temp = sum(m.temporary for m in plan.schedule.steps)
        print(
            f"{mode:>9} {n_hosts:>6} {len(fleet.vms):>6} {elapsed:>7.2f} "
            f"{plan.active_hosts_before:>6} {plan.active_hosts_after:>6} "
            f"{plan.lower_bound.hosts:>5} "
            f"{plan.active_hosts_after / max(plan.lower_bound.hosts, 1):>6.3f} "
            f"{plan.migrations:>6} {temp:>5} {plan.optimal!s:>7}  {verdict}"
        )


def replay_check(fleet: Fleet, steps: tuple[Move, ...]) -> str:
    """Apply the moves one at a time and look for any overcommit or anti-affinity breach."""
    state = ClusterState.from_fleet(fleet)
    for step in steps:
        state.move(step.vm, state.index[step.target])
        if state.overloaded_hosts():
            return f"OVERCOMMIT at {step.vm}"
    if any((members > 1).any() for members in state.anti_affinity.values()):
        return "ANTI-AFFINITY BROKEN"
    return "valid"


def main() -> None:
    print(
        f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
        f"on {os.cpu_count()} CPUs (wall times include waiting for a CPU; cpu_s does not)"
    )
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", action="store_true", help="10,000 VMs on 1,000 hosts")
    args = parser.parse_args()
    n_hosts, n_vms, n_groups = (1000, 10000, 200) if args.small else (10000, 100000, 2000)
    placed = bench_bulk(n_hosts, n_vms, n_groups)
    bench_decisions(placed, 1000 if args.small else 2000)
    if args.small:
        bench_consolidation([(200, 2000)], [(12, 80)])
    else:
        bench_consolidation([(1000, 10000)], [(12, 80), (24, 200)])


if __name__ == "__main__":
    main()
