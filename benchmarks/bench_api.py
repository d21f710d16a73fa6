"""REST API latency: a filtered page of 100 VMs out of 100,000 (p50/p99).

    .venv/bin/python benchmarks/bench_api.py [--vms 100000] [--requests 300] [--pg-url URL]

The inventory is loaded straight into the store (a sync of 100,000 VMs is
benchmarked separately); requests go through the whole FastAPI stack
in-process. Target: p99 < 50 ms.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import tempfile
import time
import uuid as uuidlib
from datetime import UTC, datetime, timedelta
from typing import Any

from benchdb import fresh_database
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from sqlalchemy import insert

from corral.api.app import create_app
from corral.inventory.service import Inventory
from corral.security.secrets import SecretBox
from corral.store import models as m
from corral.store.db import Database

DEPTS = ["Finance", "R&D", "Sales", "HR", "IT", "Legal", "Marketing", "Ops"]


def load(db: Database, n: int, hosts: int = 100, seed: int = 1) -> None:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    with db.engine.begin() as conn:
        conn.execute(
            insert(m.Host),
            [
                {
                    "name": f"kvm-{h:03d}",
                    "uri": f"qemu+ssh://kvm-{h:03d}/system",
                    "status": "ok",
                    "created_at": now,
                    "cpu_features": [],
                    "storage_fingerprint": "",
                }
                for h in range(hosts)
            ],
        )
        rows: list[dict[str, Any]] = []
        for i in range(n):
            created = now - timedelta(days=rng.randint(1, 1500))
            rows.append(
                {
                    "uuid": str(uuidlib.UUID(int=rng.getrandbits(128), version=4)),
                    "name": f"vm-{i:06d}",
                    "host_id": rng.randint(1, hosts),
                    "state": rng.choice(["running"] * 7 + ["shutoff"] * 3),
                    "state_since": created,
                    "vcpus": rng.choice([1, 2, 4, 8]),
                    "memory_max_mib": 4096,
                    "memory_mib": rng.choice([1024, 2048, 4096, 8192]),
                    "autostart": False,
                    "persistent": True,
                    "is_template": False,
                    "disks": [],
                    "nics": [],
                    "snapshots": [],
                    "disk_bytes": 40 * 2**30,
                    "owner": None if rng.random() < 0.1 else f"user{rng.randrange(500)}",
                    "department": rng.choice(DEPTS),
                    "tags": [],
                    "created_at": created,
                    "first_seen_at": created,
                    "updated_at": created,
                    "fingerprint": "",
                }
            )
            if len(rows) == 5000:
                conn.execute(insert(m.VM), rows)
                rows = []
        if rows:
            conn.execute(insert(m.VM), rows)


def measure(url: str, n: int, requests: int, reset_pg: bool) -> dict[str, float]:
    db = fresh_database(url, reset_pg)
    load(db, n)
    db.analyze()
    # The loading left garbage a real server process never holds; keep it out of the GC's way.
    gc.collect()
    gc.freeze()
    client = TestClient(create_app(Inventory(db, SecretBox(Fernet.generate_key()))))
    rng = random.Random(3)
    times: list[float] = []
    cursor_times: list[float] = []
    for k in range(requests + 20):
        params = {"state": "running", "department": rng.choice(DEPTS), "limit": 100, "sort": "name"}
        t0 = time.perf_counter()
        body = client.get("/api/v1/vms", params=params).json()
        t1 = time.perf_counter()
        assert len(body["items"]) == 100 and body["next_cursor"]
        t2 = time.perf_counter()
        page2 = client.get("/api/v1/vms", params={**params, "cursor": body["next_cursor"]}).json()
        t3 = time.perf_counter()
        assert len(page2["items"]) == 100
        if k >= 20:  # warm-up
            times.append((t1 - t0) * 1000)
            cursor_times.append((t3 - t2) * 1000)
    db.dispose()
    q = statistics.quantiles(times, n=100)
    qc = statistics.quantiles(cursor_times, n=100)
    return {"p50": q[49], "p99": q[98], "p50c": qc[49], "p99c": qc[98]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--vms", type=int, default=100_000)
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--pg-url", default=os.environ.get("CORRAL_TEST_PG_URL"))
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        rows.append(("SQLite", measure(f"sqlite:///{tmp}/api.db", args.vms, args.requests, False)))
        if args.pg_url:
            rows.append(("PostgreSQL", measure(args.pg_url, args.vms, args.requests, True)))
    print(
        f"\nGET /api/v1/vms?state=running&department=D&limit=100 over {args.vms:,} VMs, "
        f"{args.requests} requests each"
    )
    print(
        f"{'database':<12} {'p50 ms':>8} {'p99 ms':>8} {'p50 ms (page 2)':>16} "
        f"{'p99 ms (page 2)':>16} {'p99 < 50 ms':>12}"
    )
    for name, r in rows:
        ok = "yes" if max(r["p99"], r["p99c"]) < 50 else "no"
        print(
            f"{name:<12} {r['p50']:>8.1f} {r['p99']:>8.1f} {r['p50c']:>16.1f} "
            f"{r['p99c']:>16.1f} {ok:>12}"
        )


if __name__ == "__main__":
    main()
