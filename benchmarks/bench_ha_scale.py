"""The exact HA check at the scale of issue 16: k=1 on 10,000 hosts, k=2 on 200 hosts.

    .venv/bin/python benchmarks/bench_ha_scale.py [--hosts 10000 --vms 100000 --k 1]
        [--hosts 200 --vms 100000 --k 2]

A fixed, seeded fleet that is realistically loaded: each host is filled to a target drawn
between 50 % and 80 % (a few hosts to 90 %) of its memory and vCPUs with VMs of a six-flavour
mix, 2 % of the VMs in anti-affinity pairs on different hosts, hosts in racks of 20 (failure
domains); hosts are sized for the density asked. VMs are
put on hosts directly (no scheduler run), so building the fleet costs little beside the check.
Prints the build time, the time and CPU of the exact policy, the scenarios it checked and what
it found. Target (issue 16): 60 s each.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import time

from bench_ha import FLAVORS  # the same six-flavour mix (vCPUs, MiB, weight)

from corral.engines.planning import VM, Fleet, Host, Settings, make_policy

TARGET_S = 60.0
CPU_RATIO = 8.0


def make_fleet(n_hosts: int, n_vms: int, seed: int = 16) -> Fleet:
    """``n_hosts`` hosts holding about ``n_vms`` VMs, each host filled to its own target.

    Hosts are sized for the density asked (at least 32 cores and 64 GiB; 500 VMs a host need
    bigger ones) so that both memory and vCPUs end up 50-80 % allocated, not overcommitted.
    """
    rng = random.Random(seed)
    weights = [f[2] for f in FLAVORS]
    mean_vcpus = sum(f[0] * f[2] for f in FLAVORS) / sum(weights)
    mean_mib = sum(f[1] * f[2] for f in FLAVORS) / sum(weights)
    per_host = n_vms / n_hosts
    host_mib = max(65_536, int(per_host * mean_mib / 0.65))
    cores = max(32, math.ceil(per_host * mean_vcpus / (2 * CPU_RATIO * 0.65)))
    vcpu_cap = cores * 2 * CPU_RATIO
    hosts = tuple(
        Host(
            f"kvm{i:05d}",
            cores=cores,
            cpu_mhz=2600,
            memory_mib=host_mib,
            threads_per_core=2,
            failure_domains=(f"rack{i // 20:04d}",),
        )
        for i in range(n_hosts)
    )
    vms: list[VM] = []
    pair_open: tuple[str, str] | None = None  # (group, host of its first member)
    for h in hosts:
        target = 0.9 if rng.random() < 0.03 else rng.uniform(0.5, 0.8)
        mib_used = vcpus_used = 0.0
        while len(vms) < n_vms:
            vcpus, mib, _ = rng.choices(FLAVORS, weights=weights)[0]
            if (mib_used + mib) / host_mib > target or (vcpus_used + vcpus) / vcpu_cap > target:
                break
            group: tuple[str, ...] = ()
            if rng.random() < 0.02:  # anti-affinity pairs, members on two different hosts
                if pair_open is None:
                    pair_open = (f"pair{len(vms)}", h.name)
                    group = (pair_open[0],)
                elif pair_open[1] != h.name:
                    group, pair_open = (pair_open[0],), None
            vms.append(
                VM(
                    f"vm{len(vms):06d}",
                    vcpus,
                    mib,
                    host=h.name,
                    anti_affinity=group,
                    priority=rng.randint(0, 3),
                )
            )
            mib_used += mib
            vcpus_used += vcpus
    return Fleet(hosts, tuple(vms), Settings(cpu_allocation_ratio=CPU_RATIO))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=10_000)
    ap.add_argument("--vms", type=int, default=100_000)
    ap.add_argument("--k", type=int, default=1)
    args = ap.parse_args()
    t0 = time.perf_counter()
    fleet = make_fleet(args.hosts, args.vms)
    built = time.perf_counter() - t0
    mem = sum(v.memory_mib for v in fleet.vms) / sum(h.memory_mib for h in fleet.hosts)
    vcpu_share = sum(v.vcpus for v in fleet.vms) / (
        len(fleet.hosts) * fleet.hosts[0].threads * CPU_RATIO
    )
    t0, c0 = time.perf_counter(), time.process_time()
    report = make_policy("exact").evaluate(fleet, args.k).to_dict()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(
        f"\nExact HA check, {args.hosts} hosts, {len(fleet.vms)} VMs "
        f"(memory allocated {100 * mem:.1f} %, vCPUs {100 * vcpu_share:.1f} %; fleet built in "
        f"{built:.1f} s); "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    print(
        f"{'K':>2} {'wall_s':>8} {'cpu_s':>8} {'scenarios':>10} "
        f"{'failing':>8} {'tolerated':>9} {'lost_vms':>8} {'met':>4}"
    )
    print(
        f"{args.k:>2} {wall:>8.2f} {cpu:>8.2f} {report['scenarios_checked']:>10} "
        f"{report['failing_scenarios_count']:>8} {report['tolerated_host_failures']:>9} "
        f"{len(report['vms_not_coming_back']):>8} {'yes' if wall <= TARGET_S else 'no':>4}"
    )


if __name__ == "__main__":
    main()
