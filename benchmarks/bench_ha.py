"""HA admission-control benchmark: the exact K=2 check on a vSphere-maximum cluster.

    .venv/bin/python benchmarks/bench_ha.py [--small]

Fixed seeded input: 64 hosts (32 cores x 2 threads, 1.5 TiB, cpu_allocation_ratio 8,
8 racks of 8 hosts as failure domains, a quarter of the hosts with avx512),
8,000 running VMs (125 per host, ~62 % of memory and ~66 % of vCPUs) from a 6-flavor mix,
300 anti-affinity groups of 2-5 VMs, 5 % needing avx512, priorities 0-3.
Prints the time of each policy and what it found; --small is 16 hosts / 2,000 VMs.
A second run scales VM memory by 1.55 (~96 % allocated) so that many failure
scenarios fail and must be simulated in full: the slow path.
"""

from __future__ import annotations

import argparse
import os
import random
import time
from collections import defaultdict

from corral.engines.planning import VM, Fleet, Host, Settings, make_policy
from corral.engines.planning.placement.outcome import Placed
from corral.engines.planning.placement.scheduler import Scheduler, place

FLAVORS = [
    (1, 2048, 20),
    (2, 4096, 30),
    (2, 8192, 15),
    (4, 8192, 20),
    (4, 16384, 10),
    (8, 32768, 5),
]


def make_fleet(n_hosts: int, n_vms: int, seed: int = 11, mem_scale: float = 1.0) -> Fleet:
    rng = random.Random(seed)
    hosts = tuple(
        Host(
            f"esx{i:02d}",
            cores=32,
            cpu_mhz=2800,
            memory_mib=1572864,
            threads_per_core=2,
            features=frozenset({"avx2", "avx512"} if i % 4 == 0 else {"avx2"}),
            failure_domains=(f"rack{i // 8}",),
        )
        for i in range(n_hosts)
    )
    groups: dict[int, list[str]] = defaultdict(list)
    members = rng.sample(range(n_vms), k=min(n_vms, 300 * 4))
    pos = 0
    for g in range(300):
        size = rng.randint(2, 5)
        for idx in members[pos : pos + size]:
            groups[idx].append(f"aa{g}")
        pos += size
    vms = []
    for i in range(n_vms):
        vcpus, mem, _ = rng.choices(FLAVORS, weights=[f[2] for f in FLAVORS])[0]
        mem = int(mem * mem_scale)
        feats = frozenset({"avx512"}) if rng.random() < 0.05 else frozenset()
        vms.append(
            VM(
                f"vm{i:05d}",
                vcpus,
                mem,
                anti_affinity=tuple(groups.get(i, ())),
                required_features=feats,
                priority=rng.randint(0, 3),
            )
        )
    empty = Fleet(hosts, (), Settings(cpu_allocation_ratio=8.0))
    result = place(empty, vms, Scheduler.default("spread", ha_failures=0), atomic=False)
    where = {o.vm: o.host for o in result.outcomes if isinstance(o, Placed)}
    return empty.with_vms(
        [v.__class__(**{**v.__dict__, "host": where[v.name]}) for v in vms if v.name in where]
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", action="store_true")
    args = parser.parse_args()
    n_hosts, n_vms = (16, 2000) if args.small else (64, 8000)
    print(
        f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
        f"on {os.cpu_count()} CPUs (wall times include waiting for a CPU; cpu_s does not)"
    )
    for mem_scale in (1.0, 1.55):
        run(n_hosts, n_vms, mem_scale)


def run(n_hosts: int, n_vms: int, mem_scale: float) -> None:
    t0 = time.perf_counter()
    fleet = make_fleet(n_hosts, n_vms, mem_scale=mem_scale)
    build = time.perf_counter() - t0
    mem = sum(v.memory_mib for v in fleet.vms) / sum(h.memory_mib for h in fleet.hosts)
    print(
        f"\nfleet: {n_hosts} hosts, {len(fleet.vms)} running VMs placed (spread) in {build:.1f} s; "
        f"memory allocated {100 * mem:.1f} %"
    )
    print(
        f"{'policy':>14} {'K':>2} {'wall_s':>7} {'cpu_s':>6} {'tolerated':>9} {'scenarios':>9} "
        f"{'failing':>7} {'lost_vms':>8}  note"
    )
    for policy, k in (("slots", 2), ("percentage", 2), ("exact", 1), ("exact", 2)):
        t0, c0 = time.perf_counter(), time.process_time()
        report = make_policy(policy).evaluate(fleet, k).to_dict()
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        note = ""
        if policy == "exact":
            doms = report["failure_domains"]
            note = (
                f"{sum(not d['ok'] for d in doms)}/{len(doms)} racks are single points of failure"
            )
        print(
            f"{policy:>14} {k:>2} {elapsed:>7.2f} {cpu:>6.2f} "
            f"{report['tolerated_host_failures']:>9} "
            f"{report.get('scenarios_checked', '-'):>9} "
            f"{report.get('failing_scenarios_count', '-'):>7} "
            f"{len(report.get('vms_not_coming_back', [])):>8}  {note}"
        )


if __name__ == "__main__":
    main()
