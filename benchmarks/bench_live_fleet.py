"""The live fleet every ``--live`` command reads: in process, and one CLI command end to end.

    .venv/bin/python benchmarks/bench_live_fleet.py [--hosts 10000] [--changed 100]
        [--cli-hosts 1000] [--runs 3] [--pg-url URL]

Fixed input: bench_requests' seeded fleet (``--hosts`` hosts of 2 x 16 cores x 2 threads,
384 GiB, each running 4 VMs of a flavor mix), written into the inventory's tables as a sync
leaves them, every VM with one disk and one snapshot. Printed, median of ``--runs``:

- seconds of ``corral.services.fleet.live_fleet`` (the snapshot every ``--live`` command,
  the HA manager, alerts and the REST API's live plans read): as a new process reads it (a
  new Inventory object), again unchanged, and after the VMs of ``--changed`` hosts changed
  (their sizes, as a sync of those hosts writes them);
- wall seconds of ``corral ha check --live --policy slots -o json`` as a subprocess on a
  fleet of ``--cli-hosts`` hosts (4 VMs each), environment and imports included.

Run it once per checkout (PYTHONPATH=<checkout>/src) back to back and compare the ratios.
Default database: a temporary SQLite file; ``--pg-url`` for PostgreSQL (its public schema is
dropped first).

Measured 2026-12-04 20:12 UTC on the shared 2-core machine (load average 5-8), PostgreSQL,
``--hosts 10000 --changed 100 --cli-hosts 1000 --runs 3``, main (the ORM read of the whole
inventory, its document parsed again) and then the branch where live_fleet is the column
reader's snapshot:

    seconds                                     main    branch   main/branch
    new process (cold), 40,000 VMs            11.114     2.258       4.9
    same process, unchanged                   11.233     0.032     350
    same process, 100 hosts' VMs changed      12.302     0.407      30
    corral ha check --live (4,000 VMs), CLI    2.748     2.068       1.3
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select, update

from corral.services.fleet import live_fleet
from corral.store import models as m
from corral.store.db import Database

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_requests import inventory_of, load_inventory, make_fleet
from benchdb import fresh_database

DISK = {"device": "disk", "path": "/var/lib/libvirt/images/vm.qcow2", "capacity_bytes": 20 * 2**30}
SNAPSHOT = {"name": "before-upgrade", "created_at": "2026-11-01T10:00:00+00:00"}


def populate(db: Database, hosts: int) -> None:
    """The seeded fleet in the inventory's tables, each VM with a disk and a snapshot."""
    load_inventory(db, make_fleet(hosts))
    with db.engine.begin() as conn:
        conn.execute(update(m.VM).values(disks=[DISK], snapshots=[SNAPSHOT], snapshot_count=1))


def in_process(db: Database, changed: int, runs: int) -> list[tuple[str, float]]:
    """Median seconds of live_fleet: a new process's read, unchanged, after a change."""
    cold, same, after = [], [], []
    with db.session() as s:
        ids = list(s.scalars(select(m.Host.id).order_by(m.Host.id)))
    stride = max(1, len(ids) // max(changed, 1))
    for run in range(runs):
        inventory = inventory_of(db)
        t0 = time.perf_counter()
        first = live_fleet(inventory)
        cold.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        live_fleet(inventory)
        same.append(time.perf_counter() - t0)
        with db.engine.begin() as conn:
            conn.execute(
                update(m.VM)
                .where(m.VM.host_id.in_(ids[run % stride :: stride][:changed]))
                .values(
                    memory_mib=m.VM.memory_mib + 1,
                    updated_at=datetime.now(UTC),
                )
            )
        t0 = time.perf_counter()
        again = live_fleet(inventory)
        after.append(time.perf_counter() - t0)
        assert again.fleet != first.fleet
    return [
        (f"new process (cold), {len(first.vms):,} VMs", statistics.median(cold)),
        ("same process, unchanged", statistics.median(same)),
        (f"same process, {changed} hosts' VMs changed", statistics.median(after)),
    ]


def cli(url: str, runs: int) -> float:
    """Median wall seconds of one ``ha check --live`` command in a fresh process."""
    home = Path(tempfile.mkdtemp(prefix="bench-live-home-"))
    env = {**os.environ, "CORRAL_HOME": str(home), "CORRAL_DATABASE_URL": url}
    args = [sys.executable, "-m", "corral", "ha", "check", "--live", "--policy", "slots"]
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        done = subprocess.run(
            [*args, "-o", "json"], env=env, capture_output=True, text=True, timeout=600
        )
        times.append(time.perf_counter() - t0)
        assert done.returncode == 0, done.stderr
    return statistics.median(times)


def run(args: argparse.Namespace, make_db: Callable[[], tuple[Database, str]]) -> None:
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"({os.cpu_count()} CPUs)")  # fmt: skip
    db, _ = make_db()
    populate(db, args.hosts)
    rows = in_process(db, args.changed, args.runs)
    db.dispose()
    print()
    print(f"| live_fleet, {args.hosts:,} hosts, {db.backend} | median s |")
    print("| --- | ---: |")
    for what, seconds in rows:
        print(f"| {what} | {seconds:.3f} |")
    db, url = make_db()
    populate(db, args.cli_hosts)
    db.dispose()
    seconds = cli(url, args.runs)
    print()
    print(f"| CLI, {args.cli_hosts:,} hosts x 4 VMs, {db.backend} | median s |")
    print("| --- | ---: |")
    print(f"| corral ha check --live --policy slots -o json | {seconds:.3f} |")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hosts", type=int, default=10_000)
    ap.add_argument("--changed", type=int, default=100, help="hosts changed for the re-read")
    ap.add_argument("--cli-hosts", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--pg-url", default=None)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-live-"))
    counter = iter(range(1_000_000))

    def make_db() -> tuple[Database, str]:
        url = args.pg_url or f"sqlite:///{tmp / f'corral-{next(counter)}.db'}"
        return fresh_database(url, reset_pg=bool(args.pg_url)), url

    run(args, make_db)


if __name__ == "__main__":
    main()
