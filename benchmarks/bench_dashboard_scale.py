"""The dashboard's VM list page at 100,000 VMs on PostgreSQL, over real HTTP.

    .venv/bin/python benchmarks/bench_dashboard_scale.py [--vms 100000] [--rounds 20]
                                                         [--pg-url URL]

A fixed, seeded fleet (``--vms`` VMs on 200 hosts, 8 departments, 4 environments, owners,
purposes, leases) is written straight into PostgreSQL with the store's bulk writer (COPY),
then the application is served by uvicorn on loopback and a signed-in browser-like client
fetches a few filtered and sorted list pages, each first page and the page after it by its
cursor. Time to a rendered page = the whole HTML response. Target: p95 < 500 ms.

``--pg-url`` (or $CORRAL_TEST_PG_URL) names the database; its public schema is dropped.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import tempfile
import time
import uuid as uuidlib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from bench_dashboard import serving, signed_in, timed
from benchdb import fresh_database
from cryptography.fernet import Fernet

from corral.api.app import create_app
from corral.config import Settings
from corral.inventory.service import Inventory
from corral.security.secrets import SecretBox
from corral.security.token_store import TokenStore
from corral.store import models as m
from corral.store.bulk import bulk_insert
from corral.store.db import Database

DEPARTMENTS = ("sales", "finance", "hr", "rnd", "ops", "legal", "support", "marketing")
ENVIRONMENTS = ("prod", "staging", "test", "dev")
HOSTS = 200
#: The list pages timed: (label, query). Each is a link a person could share.
QUERIES: tuple[tuple[str, dict[str, str]], ...] = (
    ("all, by name", {}),
    (
        "running + department, memory desc",
        {"state": "running", "department": "{dept}", "sort": "memory_mib", "order": "desc"},
    ),
    ("search 'vm-04', by name", {"q": "vm-04", "sort": "name"}),
    ("host, created desc", {"host": "{host}", "sort": "created_at", "order": "desc"}),
    ("no owner, by department", {"no_owner": "1", "sort": "department"}),
    ("environment + shutoff, vCPUs", {"environment": "{env}", "state": "shutoff", "sort": "vcpus"}),
    ("lease expired, by owner desc", {"expired": "1", "sort": "owner", "order": "desc"}),
)
NEXT = re.compile(r'href="(/vms\?[^"]*cursor=[^"]+)" rel="next"')


def fleet_rows(n: int, now: datetime, seed: int = 11) -> list[dict[str, Any]]:
    """``n`` VMs, always the same for one seed: 70 % running, 10 % without owner, 5 % past
    their lease."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        created = now - timedelta(days=rng.randint(1, 1500))
        vcpus, mem = rng.choice(((1, 1024), (2, 2048), (2, 4096), (4, 8192), (8, 16384)))
        rows.append(
            {
                "uuid": str(uuidlib.UUID(int=rng.getrandbits(128), version=4)),
                "name": f"vm-{i:06d}",
                "host_id": rng.randint(1, HOSTS),
                "state": rng.choice(("running",) * 7 + ("shutoff",) * 2 + ("paused",)),
                "state_since": created,
                "vcpus": vcpus,
                "memory_max_mib": mem,
                "memory_mib": mem,
                "disk_bytes": rng.choice((20, 40, 80, 160)) * 2**30,
                "owner": None if rng.random() < 0.1 else f"user{rng.randrange(2000)}",
                "department": rng.choice(DEPARTMENTS),
                "environment": rng.choice(ENVIRONMENTS),
                "purpose": rng.choice(("web", "db", "batch", "ci", None)),
                "expires_on": date(2020, 1, 1) if rng.random() < 0.05 else None,
                "created_at": created,
                "first_seen_at": created,
                "updated_at": created,
            }
        )
    return rows


def load(db: Database, n: int) -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    hosts = [
        {
            "name": f"kvm-{h:03d}",
            "uri": f"qemu+ssh://kvm-{h:03d}/system",
            "status": "ok",
            "created_at": now,
            "cpu_features": [],
        }
        for h in range(HOSTS)
    ]
    with db.session() as s:
        bulk_insert(s, m.Host, hosts)
        bulk_insert(s, m.VM, fleet_rows(n, now))
    db.analyze()


def run(url: str, n: int, rounds: int) -> dict[str, list[float]]:
    db = fresh_database(url, reset_pg=True)
    t0 = time.perf_counter()
    load(db, n)
    print(f"{n:,} VMs written in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    token = TokenStore(db).create("bench")
    app = create_app(
        Inventory(db, SecretBox(Fernet.generate_key())),
        settings=Settings(home=Path(tempfile.mkdtemp())),
    )
    rng = random.Random(5)
    times: dict[str, list[float]] = {}
    for label, _ in QUERIES:
        times[label], times[f"  {label}: next"] = [], []
    with serving(app) as base:
        client = signed_in(base, token)
        # Round by round over every query, so a slow moment of the machine (another process,
        # PostgreSQL's autovacuum after the load) falls on all of them alike.
        for k in range(rounds + 3):
            for label, template in QUERIES:
                first, second = timed_pair(client, label, _params(template, rng))
                if k >= 3:  # the first rounds warm the server's and PostgreSQL's caches
                    times[label].append(first)
                    times[f"  {label}: next"].append(second)
    app.state.jobs.shutdown(wait=True)
    db.dispose()
    return times


def _params(template: dict[str, str], rng: random.Random) -> dict[str, str]:
    values = {
        "dept": rng.choice(DEPARTMENTS),
        "host": f"kvm-{rng.randrange(HOSTS):03d}",
        "env": rng.choice(ENVIRONMENTS),
    }
    return {key: value.format(**values) for key, value in template.items()}


def timed_pair(client: httpx.Client, label: str, params: dict[str, str]) -> tuple[float, float]:
    """The first page's time and that of the page after it (by its cursor link)."""
    url = "/vms?" + urlencode(params) if params else "/vms"
    first = timed(client, url)
    link = NEXT.search(client.get(url).text)
    assert link, f"{label}: a list this long has a next page"
    return first, timed(client, link.group(1).replace("&amp;", "&"))


def table(title: str, times: dict[str, list[float]], target_ms: float) -> None:
    print(f"\n{title}")
    print(f"{'page':<48} {'n':>4} {'p50 ms':>8} {'p95 ms':>8}  p95 < {target_ms:.0f} ms")
    everything: list[float] = []
    for page, ts in times.items():
        q = statistics.quantiles(ts, n=20)
        everything += ts
        print(
            f"{page[:48]:<48} {len(ts):>4} {statistics.median(ts):>8.1f} {q[18]:>8.1f}  "
            f"{'yes' if q[18] < target_ms else 'NO'}"
        )
    q = statistics.quantiles(everything, n=20)
    print(
        f"{'all':<48} {len(everything):>4} {statistics.median(everything):>8.1f} "
        f"{q[18]:>8.1f}  {'yes' if q[18] < target_ms else 'NO'}"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--vms", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--pg-url", default=os.environ.get("CORRAL_TEST_PG_URL"))
    args = ap.parse_args()
    if not args.pg_url or not args.pg_url.startswith("postgresql"):
        sys.exit("give --pg-url (or CORRAL_TEST_PG_URL): a PostgreSQL database to overwrite.")
    times = run(args.pg_url, args.vms, args.rounds)
    table(f"The VM list page over {args.vms:,} VMs on PostgreSQL, real HTTP", times, 500)


if __name__ == "__main__":
    main()
