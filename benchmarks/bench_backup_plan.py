"""Backup planner benchmark: 10,000 VMs on 1,000 hosts planned in under 10 s (issue 12).

    .venv/bin/python benchmarks/bench_backup_plan.py [--small]

Fixed seeded input: 1,000 hosts with 10 VMs each, 100 shared datastores (10 hosts each).
VMs: disks of 20-2,000 GiB, tiers 15 % replicated (RPO 1 h), 45 % restart (4 h),
30 % backup-only (1 day, 22:00-06:00 window), 10 % none (rebuilt); change rate 1-20 % of
the disk a day. Budgets: hosts 200 MiB/s (400 at night), datastores 400 MiB/s (1,200 at
night); one job copies at 100 MiB/s. The "tight" row halves every budget and doubles the
change, so the planner must also find the misses and their fixes. The last row plans the
weekly patch windows (01:00-05:00, one VM per host at a time) of the same fleet.
Prints one row per case; the target is the 10,000-VM rows under 10 s.
"""

from __future__ import annotations

import argparse
import random
import time

from corral.engines.backup import (
    BackupInputs,
    BackupVM,
    IOBudget,
    PatchVM,
    Policy,
    Window,
    plan_backups,
    plan_patches,
)

NIGHT = Window(22 * 60, 6 * 60)
TIERS = ["replicated"] * 15 + ["restart"] * 45 + ["backup-only"] * 30 + ["none"] * 10


def fleet(n_hosts: int, per_host: int, scale: float = 1.0, seed: int = 12) -> BackupInputs:
    rng = random.Random(seed)
    vms = []
    for h in range(n_hosts):
        for k in range(per_host):
            size = rng.choice([20.0, 40.0, 100.0, 250.0, 500.0, 2000.0])
            vms.append(
                BackupVM(
                    f"vm{h:04d}-{k:02d}",
                    f"host{h:04d}",
                    f"ds{h // 10:03d}",
                    size,
                    rng.choice(TIERS),
                    size * rng.uniform(0.01, 0.20) * scale,
                )
            )
    hosts = tuple(
        IOBudget(f"host{h:04d}", int(200 / scale), ((NIGHT, int(400 / scale)),))
        for h in range(n_hosts)
    )
    stores = tuple(
        IOBudget(f"ds{d:03d}", int(400 / scale), ((NIGHT, int(1200 / scale)),))
        for d in range(n_hosts // 10)
    )
    return BackupInputs(tuple(vms), hosts, stores)


def row(case: str, inputs: BackupInputs) -> None:
    started = time.perf_counter()
    plan = plan_backups(inputs, Policy())
    seconds = time.perf_counter() - started
    print(
        f"{case:<10} {len(inputs.vms):>7,} {len(inputs.hosts):>6,} {len(inputs.datastores):>5,}"
        f" {seconds:>8.2f} {plan.peak_utilisation('host:'):>9.0%}"
        f" {plan.peak_utilisation('datastore:'):>9.0%} {len(plan.scheduled):>9,}"
        f" {len(plan.misses):>7,} {len(plan.rebuilt):>7,}"
    )


def patch_row(inputs: BackupInputs) -> None:
    vms = [PatchVM(v.name, v.host, (f"g{i % 500}",)) for i, v in enumerate(inputs.vms)]
    started = time.perf_counter()
    plan = plan_patches(vms)
    seconds = time.perf_counter() - started
    print(
        f"{'patches':<10} {len(vms):>7,} {len(inputs.hosts):>6,} {'-':>5} {seconds:>8.2f}"
        f" {'-':>9} {'-':>9} {len(plan.slots):>9,} {len(plan.unplaced):>7,} {'-':>7}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="100 hosts / 1,000 VMs only")
    args = parser.parse_args()
    n_hosts = 100 if args.small else 1000
    print(
        f"{'case':<10} {'VMs':>7} {'hosts':>6} {'dstor':>5} {'seconds':>8} {'peak host':>9}"
        f" {'peak dstr':>9} {'scheduled':>9} {'misses':>7} {'rebuilt':>7}"
    )
    row("small", fleet(100, 10))
    if not args.small:
        row("full", fleet(n_hosts, 10))
        row("tight", fleet(n_hosts, 10, scale=2.0))
    patch_row(fleet(n_hosts, 10))


if __name__ == "__main__":
    main()
