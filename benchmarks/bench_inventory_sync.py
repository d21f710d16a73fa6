"""Sync of a 10,000-VM test-driver fleet over 20 hosts: first sync and unchanged re-sync.

    .venv/bin/python benchmarks/bench_inventory_sync.py [--hosts 20] [--vms-per-host 500]
        [--pg-url URL]

Prints one row per database. Target: unchanged re-sync < 2 s.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from cryptography.fernet import Fernet

sys.path.insert(0, str(Path(__file__).parent))
from benchdb import fresh_database
from fleetgen import write_fleet

from corral.hypervisor.uri import HostAccess
from corral.inventory.service import Inventory
from corral.security.secrets import SecretBox


def run(url: str, paths: list[Path], reset_pg: bool) -> dict[str, float]:
    db = fresh_database(url, reset_pg)
    access = HostAccess(node_dir=paths[0].parent)  # the fleet's node files
    inv = Inventory(db, SecretBox(Fernet.generate_key()), access=access)
    for p in paths:
        inv.add_host(p.stem, f"test://{p}")
    t0 = time.perf_counter()
    first = inv.sync()
    t1 = time.perf_counter()
    second = inv.sync()
    t2 = time.perf_counter()
    third = inv.sync()
    t3 = time.perf_counter()
    assert first.count_of("created") == sum(h.vms_seen for h in first.hosts)
    assert second.events == {} and third.events == {}
    db.dispose()
    return {"vms": first.count_of("created"), "first": t1 - t0, "resync": min(t2 - t1, t3 - t2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=20)
    ap.add_argument("--vms-per-host", type=int, default=500)
    ap.add_argument("--pg-url", default=os.environ.get("CORRAL_TEST_PG_URL"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_fleet(Path(tmp) / "nodes", args.hosts, args.vms_per_host)
        rows = [("SQLite", run(f"sqlite:///{tmp}/bench.db", paths, False))]
        if args.pg_url:
            rows.append(("PostgreSQL", run(args.pg_url, paths, True)))
    print(
        f"\nInventory sync, {args.hosts} test-driver hosts x {args.vms_per_host} VMs "
        "(target: unchanged re-sync < 2 s)"
    )
    print(f"{'database':<12} {'VMs':>7} {'first sync s':>13} {'re-sync s':>10} {'target met':>11}")
    for name, r in rows:
        print(
            f"{name:<12} {r['vms']:>7.0f} {r['first']:>13.2f} {r['resync']:>10.2f} "
            f"{'yes' if r['resync'] < 2 else 'no':>11}"
        )


if __name__ == "__main__":
    main()
