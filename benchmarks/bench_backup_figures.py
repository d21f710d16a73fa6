"""The backup figures of issue 12's closing note, from one run on the real libvirtd hosts.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_backup_figures.py [--data-mib 256]

One table, one run: the executor's figures of bench_backup_exec.py (a full backup's
throughput against a plain copy of the same disk, as a ratio; the incremental's size against
the bytes the guest changed; restore times, to a defined VM and to a booted guest on the other
host), then the planner's 10,000 VMs on 1,000 hosts (bench_backup_plan.py's fixed fleet, the
normal and the tight case; the target is under 10 s each). Needs scripts/realhosts.sh up.
Figures move with the machine's load: the table ends with the load average it ran at.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

import bench_backup_exec as execb  # noqa: E402
import bench_backup_plan as planb  # noqa: E402

from corral.engines.backup import Policy, plan_backups  # noqa: E402


def _planner_rows() -> list[tuple[str, str]]:
    rows = []
    for case, scale in (("normal", 1.0), ("tight", 2.0)):
        inputs = planb.fleet(1000, 10, scale=scale)
        started = time.perf_counter()
        plan = plan_backups(inputs, Policy())
        seconds = time.perf_counter() - started
        what = f"planner, 10,000 VMs on 1,000 hosts, {case} (s; scheduled, misses)"
        rows.append((what, f"{seconds:.2f}; {len(plan.scheduled):,}, {len(plan.misses):,}"))
    return rows


def _executor_rows(data_mib: int) -> list[tuple[str, str]]:
    env = execb.load_realhost_env()
    if isinstance(env, str):
        sys.exit(env)
    import libvirt

    conns = [libvirt.open(uri) for uri in env.uris[:2]]
    made: list[tuple[object, str]] = []
    with tempfile.TemporaryDirectory(prefix="bk2-figures-") as tmp:
        work = Path(tmp)
        factory = execb.GuestFactory(env, conns, work)
        try:
            return execb._bench(work, factory, env, data_mib, made)
        finally:
            for conn, name in made:
                dom = conn.lookupByName(name)  # type: ignore[attr-defined]
                if dom.isActive():
                    dom.destroy()
                dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA)
            factory.cleanup()
            for conn in conns:
                conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-mib", type=int, default=256)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    rows = _executor_rows(args.data_mib) + _planner_rows()
    load_after = os.getloadavg()[0]
    rows.append(("load average (1 min) at start / end", f"{load_before:.1f} / {load_after:.1f}"))
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  value")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
