"""Dashboard page times over real HTTP: the demo fleet, and the VM list at 100,000 VMs.

    .venv/bin/python benchmarks/bench_dashboard.py [--rounds 20] [--history-days 7]
                                                   [--vms 100000] [--pg-url URL]
                                                   [--skip-page PREFIX ...]

1. The demo: the fleet ``corral demo`` builds (150 VMs on 6 test-driver hosts, seed 7) with
   ``--history-days`` of Bitbrains traces in DuckDB, served by uvicorn on loopback; a signed-in
   client fetches every page ``--rounds`` times. Time to a rendered page = the whole HTML
   response. Target: p95 < 300 ms. Besides the pages listed, a VM's page, a filtered VM
   list, a what-if (the first host removed, 10 VMs added: its runway in days) and the page
   of a finished consolidation job (``/plan/jobs/ID`` and ``/jobs/ID``). ``--skip-page``
   leaves out the pages starting with a prefix (e.g. ``/jobs/`` against a checkout whose
   job page followed backups only).
2. The VM list, filtered (state, department) and sorted (memory, descending), first page and
   the next by its cursor, over ``--vms`` VMs on PostgreSQL (``--pg-url`` or
   $CORRAL_TEST_PG_URL; its public schema is dropped). Target: p95 < 500 ms.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode

import httpx
import uvicorn
from bench_api import DEPTS, load
from benchdb import fresh_database
from cryptography.fernet import Fernet
from fastapi import FastAPI

from corral.api.app import create_app
from corral.api.routes.plan import CONSOLIDATE, ConsolidateRequest
from corral.config import Settings
from corral.demo.metrics import backfill_history, default_trace_dir, running_vms
from corral.demo.run import build_demo
from corral.hypervisor.uri import HostAccess
from corral.inventory.service import Inventory
from corral.metrics.store import open_store
from corral.security.secrets import SecretBox
from corral.security.token_store import TokenStore
from corral.services.jobs import FINISHED, JobService
from corral.store.db import Database

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
DEMO_PAGES = (
    *("/admin", "/manager", "/hosts", "/vms", "/sprawl", "/reclaim", "/events"),
    *("/requests", "/approvals", "/ha", "/backups", "/alerts", "/audit"),
    *("/plan", "/plan?vcpus=2&memory_mib=4096", "/quotas", "/blueprints", "/units", "/ha/drills"),
)


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def signed_in(base: str, token: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=60, follow_redirects=True)
    csrf = CSRF.search(client.get("/login").text)
    assert csrf
    r = client.post("/login", data={"csrf": csrf.group(1), "token": token, "next": "/"})
    assert r.status_code == 200 and "Sign out" in r.text, r.status_code
    return client


def timed(client: httpx.Client, url: str) -> float:
    t0 = time.perf_counter()
    r = client.get(url)
    ms = (time.perf_counter() - t0) * 1000
    assert r.status_code == 200 and "</html>" in r.text, (url, r.status_code)
    return ms


def finished_consolidation(app: FastAPI) -> str:
    """A consolidation of the live fleet, run to its end; its job id."""
    jobs: JobService = app.state.jobs
    job = jobs.submit(CONSOLIDATE, ConsolidateRequest(live=True), "bench")
    while jobs.get(job.id).state not in FINISHED:
        time.sleep(0.1)
    return job.id


def demo_pages(
    tmp: Path, rounds: int, history_days: float, skip: tuple[str, ...] = ()
) -> dict[str, list[float]]:
    shared = Path(os.environ.get("CORRAL_SHARED_DATA", Path(__file__).parents[2] / "shared/data"))
    settings = Settings(home=tmp / "home", metrics_url=f"duckdb:///{tmp / 'metrics.duckdb'}")
    db = Database(f"sqlite:///{tmp / 'demo.db'}")
    db.migrate()
    inv = Inventory(db, SecretBox(Fernet.generate_key()), access=HostAccess(node_dir=tmp))
    result = build_demo(inv, tmp / "nodes", seed=7, n_vms=150, n_hosts=6)
    store = open_store(settings.metrics_url)
    traces = default_trace_dir(shared)
    if traces is not None and history_days > 0:
        vms = running_vms(inv, [h.name for h in result.fleet.hosts])
        backfill_history(store, vms, traces, history_days, seed=7)
    token = TokenStore(db).create("bench")
    app = create_app(inv, settings=settings, metrics=store)
    uuid = inv.list_vms(limit=1).items[0].uuid
    job = finished_consolidation(app)
    pages = (
        *DEMO_PAGES,
        "/vms?q=sales&state=running&sort=memory_mib&order=desc",
        f"/vms/{uuid}",
        f"/plan?remove={result.fleet.hosts[0].name}&add=10",
        f"/plan/jobs/{job}",
        f"/jobs/{job}",
    )
    pages = tuple(p for p in pages if not p.startswith(skip))
    times: dict[str, list[float]] = {p: [] for p in pages}
    with serving(app) as base:
        client = signed_in(base, token)
        for page in pages:
            timed(client, page)  # warm-up
        for _ in range(rounds):
            for page in pages:
                times[page].append(timed(client, page))
    app.state.jobs.shutdown(wait=True)
    return times


def vm_list_at_scale(url: str, n: int, rounds: int) -> dict[str, list[float]]:
    db = fresh_database(url, reset_pg=True)
    load(db, n)
    db.analyze()
    token = TokenStore(db).create("bench")
    app = create_app(
        Inventory(db, SecretBox(Fernet.generate_key())),
        settings=Settings(home=Path(tempfile.mkdtemp())),
    )
    rng = random.Random(3)
    first: list[float] = []
    second: list[float] = []
    with serving(app) as base:
        client = signed_in(base, token)
        for k in range(rounds + 5):
            query = urlencode(
                {
                    "state": "running",
                    "department": rng.choice(DEPTS),
                    "sort": "memory_mib",
                    "order": "desc",
                }
            )
            t = timed(client, f"/vms?{query}")
            page = client.get(f"/vms?{query}").text
            cursor = re.search(r'href="(/vms\?[^"]*cursor=[^"]+)" rel="next"', page)
            assert cursor, "a filtered list of this size has a next page"
            t2 = timed(client, cursor.group(1).replace("&amp;", "&"))
            if k >= 5:
                first.append(t)
                second.append(t2)
    app.state.jobs.shutdown(wait=True)
    db.dispose()
    return {"/vms filtered + sorted": first, "  next page (cursor)": second}


def table(title: str, times: dict[str, list[float]], target_ms: float) -> None:
    print(f"\n{title}")
    print(f"{'page':<58} {'n':>4} {'p50 ms':>8} {'p95 ms':>8}  p95 < {target_ms:.0f} ms")
    everything: list[float] = []
    for page, ts in times.items():
        q = statistics.quantiles(ts, n=20)
        everything += ts
        print(
            f"{page[:58]:<58} {len(ts):>4} {statistics.median(ts):>8.1f} {q[18]:>8.1f}  "
            f"{'yes' if q[18] < target_ms else 'NO'}"
        )
    q = statistics.quantiles(everything, n=20)
    print(
        f"{'all pages':<58} {len(everything):>4} {statistics.median(everything):>8.1f} "
        f"{q[18]:>8.1f}  {'yes' if q[18] < target_ms else 'NO'}"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--history-days", type=float, default=7.0)
    ap.add_argument("--vms", type=int, default=100_000)
    ap.add_argument("--pg-url", default=os.environ.get("CORRAL_TEST_PG_URL"))
    ap.add_argument("--skip-demo", action="store_true")
    ap.add_argument("--skip-page", action="append", default=[], metavar="PREFIX")
    args = ap.parse_args()
    if not args.skip_demo:
        with tempfile.TemporaryDirectory() as tmp:
            times = demo_pages(Path(tmp), args.rounds, args.history_days, tuple(args.skip_page))
        table(
            f"The demo fleet (150 VMs, {args.history_days:g} days of metrics), real HTTP",
            times,
            300,
        )
    if args.pg_url:
        times = vm_list_at_scale(args.pg_url, args.vms, args.rounds)
        table(f"The VM list over {args.vms:,} VMs on PostgreSQL, real HTTP", times, 500)
    else:
        print(
            "\n(no --pg-url or CORRAL_TEST_PG_URL: the 100,000-VM run was skipped)", file=sys.stderr
        )


if __name__ == "__main__":
    main()
