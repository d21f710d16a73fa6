"""VM request benchmark: decision time incl. placement among 10,000 hosts, and throughput.

    .venv/bin/python benchmarks/bench_requests.py --pg-url URL [--hosts 10000]
        [--decisions 300] [--requests 1000] [--clients 200] [--changed 100]

Fixed seeded input, written into the inventory's tables (the service reads it as it reads a
synced fleet): ``--hosts`` hosts (2 x 16 cores x 2 threads, 384 GiB) each running 4 VMs
from a flavor mix. The request service is the one the CLI and the API build
(corral.services.request_setup: default rules, N+1 kept, the live inventory's fleet).
Department "red" has a quota on VMs; "blue" has none. Each request asks for 1 VM of
2 vCPUs / 4 GiB / 20 GB in dev, so the rules approve it at once when quota and capacity
allow: every request is a full decision (lock, quota usage, placement on the fleet plus
every reservation, reservation written, audit entries).

0. the live fleet read: cold, unchanged, after 1 VM changed, after the VMs of ``--changed``
   hosts changed (metadata: no placement changes) and after those of ``--changed`` other
   hosts were resized; the fleet read alone and the placement state built on it.
1. decisions: ``--decisions`` submits one after another through the service; p50/p99 of
   wall time and of this thread's CPU time (the robust figure on a shared machine).
2. throughput: ``--requests`` POST /api/v1/requests (submit) from ``--clients`` concurrent
   httpx clients against a real uvicorn server; requests/s and p50/p99 latency, then a
   check that no quota was exceeded and no host booked beyond its capacity (or its N+1
   reserve), counted from the reservations in the database.

Target (issue 10): p99 decision time under 50 ms among 10,000 hosts. Default database:
a temporary SQLite file; ``--pg-url`` for PostgreSQL (its public schema is dropped first).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid as uuidlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
from cryptography.fernet import Fernet
from sqlalchemy import func, insert, select, update

from corral.api.app import create_app
from corral.config import Settings
from corral.domain.access import Principal, Role
from corral.domain.requests import Size
from corral.engines.approval import Booked, Limits, load_rules, place_request
from corral.engines.costing import load_cost_model
from corral.engines.planning.model import VM, Fleet, Host
from corral.engines.planning.model import Settings as FleetSettings
from corral.engines.planning.placement.filters.ha_reserve import reserve_holds
from corral.engines.planning.state import ClusterState
from corral.inventory.service import Inventory
from corral.security.secrets import SecretBox
from corral.security.token_store import TokenStore
from corral.services.quotas import Prices, QuotaService
from corral.services.request_setup import request_service
from corral.services.requests import RequestService, RequestSpec
from corral.services.users import UserService
from corral.store import models as m
from corral.store.db import Database

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchdb import fresh_database
from probe_concurrency import serving

FLAVORS = [(1, 2048), (2, 4096), (4, 8192), (4, 16384), (8, 32768)]
SIZE = Size(2, 4096, 20.0)
ADMIN = Principal("bench-admin", frozenset({Role.admin}), frozenset())


def make_fleet(n_hosts: int, vms_per_host: int = 4, seed: int = 7, k: int = 1) -> Fleet:
    """``n_hosts`` equal hosts, each already running ``vms_per_host`` VMs of the mix."""
    rng = random.Random(seed)
    hosts = tuple(
        Host(f"h{i:05d}", cores=32, cpu_mhz=2600, memory_mib=393216, threads_per_core=2)
        for i in range(n_hosts)
    )
    vms = tuple(
        VM(f"vm{h:05d}-{j}", *rng.choice(FLAVORS), host=hosts[h].name)
        for h in range(n_hosts)
        for j in range(vms_per_host)
    )
    return Fleet(hosts, vms, FleetSettings(cpu_allocation_ratio=2.0, ha_host_failures=k))


def spec(department: str) -> RequestSpec:
    return RequestSpec("debian-12", 1, SIZE, "bench", department, "benchmark", "dev", 30)


def load_inventory(db: Database, fleet: Fleet) -> None:
    """The fleet as a sync leaves it in the inventory: hosts with their facts, running VMs."""
    now = datetime.now(UTC)
    with db.engine.begin() as conn:
        conn.execute(
            insert(m.Host),
            [
                {
                    "name": h.name,
                    "uri": f"test:///bench/{h.name}",
                    "status": "ok",
                    "created_at": now,
                    "last_sync_at": now,
                    "cpu_features": [],
                    "storage_fingerprint": "",
                    "sockets": 2,
                    "cores_per_socket": h.cores // 2,
                    "threads_per_core": h.threads_per_core,
                    "cpus": h.threads,
                    "mhz": h.cpu_mhz,
                    "memory_mib": h.memory_mib,
                }
                for h in fleet.hosts
            ],
        )
        ids = {name: id_ for name, id_ in conn.execute(select(m.Host.name, m.Host.id))}
        rng = random.Random(11)
        rows = [
            {
                "uuid": str(uuidlib.UUID(int=rng.getrandbits(128), version=4)),
                "name": v.name,
                "host_id": ids[v.host],
                "state": "running",
                "state_since": now,
                "vcpus": v.vcpus,
                "memory_max_mib": v.memory_mib,
                "memory_mib": v.memory_mib,
                "autostart": True,
                "persistent": True,
                "is_template": False,
                "disks": [],
                "nics": [],
                "snapshots": [],
                "disk_bytes": 20 * 10**9,
                "owner": "bench",
                "department": "blue",
                "tags": [],
                "created_at": now,
                "first_seen_at": now,
                "updated_at": now,
                "fingerprint": "",
            }
            for v in fleet.vms
            if v.host is not None
        ]
        for i in range(0, len(rows), 5000):
            conn.execute(insert(m.VM), rows[i : i + 5000])


def inventory_of(db: Database) -> Inventory:
    return Inventory(db, SecretBox(Fernet.generate_key()))


def service(db: Database, home: Path) -> RequestService:
    """The request service the CLI and the API build: default rules and cost, live fleet."""
    return request_service(inventory_of(db), Settings(home=home, provision_on_approval=False))


@dataclass
class Storm:
    """What the concurrent clients got back."""

    latencies_s: list[float] = field(default_factory=list)
    states: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


def storm(base_url: str, tokens: list[str], departments: list[str], total: int,
          clients: int) -> Storm:  # fmt: skip
    """``total`` submits from ``clients`` threads at once (client i uses tokens[i % ...])."""
    result = Storm()
    start = threading.Barrier(clients)
    per = [total // clients + (1 if i < total % clients else 0) for i in range(clients)]

    def client(i: int) -> None:
        token, dept = tokens[i % len(tokens)], departments[i % len(departments)]
        body = {**_body(dept), "submit": True}
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base_url, timeout=120, headers=headers) as http:
            start.wait()
            for _ in range(per[i]):
                t0 = time.perf_counter()
                try:
                    resp = http.post("/api/v1/requests", json=body)
                except httpx.HTTPError as exc:
                    with result.lock:
                        result.errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                took = time.perf_counter() - t0
                with result.lock:
                    result.latencies_s.append(took)
                    if resp.status_code != 201:
                        result.errors.append(f"{resp.status_code} {resp.text[:200]}")
                        continue
                    got = resp.json()
                    result.states[f"{dept}:{got['state']}"] += 1
                    for r in got["reasons"]:
                        result.reasons[f"{dept}:{r['rule']}"] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result.seconds = time.perf_counter() - t0
    return result


def _body(department: str) -> dict[str, object]:
    s = spec(department)
    return {
        "template": s.template, "count": s.count, "vcpus": SIZE.vcpus,
        "memory_mib": SIZE.memory_mib, "disk_gb": SIZE.disk_gb, "owner": s.owner,
        "department": department, "purpose": s.purpose, "environment": s.environment,
        "lease_days": s.lease_days,
    }  # fmt: skip


def booked(db: Database) -> list[Booked]:
    with db.session() as s:
        rows = s.execute(
            select(
                m.RequestReservation.host,
                func.sum(m.RequestReservation.vcpus),
                func.sum(m.RequestReservation.memory_mib),
            ).group_by(m.RequestReservation.host)
        )
        return [Booked(h, float(v), float(mib)) for h, v, mib in rows]


def overbooked(fleet: Fleet, db: Database, k: int) -> list[str]:
    """Hosts booked beyond capacity, and a broken N+k reserve: both must be empty."""
    state = ClusterState.from_fleet(fleet)
    for b in booked(db):
        i = state.index[b.host]
        state.used[i, 0] += b.vcpus
        state.used[i, 1] += b.memory_mib
    bad = state.overloaded_hosts()
    return bad + ([] if reserve_holds(state, k) else [f"N+{k} reserve broken"])


def approved_in(db: Database, department: str) -> int:
    with db.session() as s:
        return int(
            s.scalar(
                select(func.coalesce(func.sum(m.VMRequest.count), 0)).where(
                    m.VMRequest.department == department, m.VMRequest.state == "approved"
                )
            )
            or 0
        )


def serve_app(db: Database, fleet: Fleet | None, home: Path) -> tuple[object, list[str]]:
    """The app on ``db``, deciding on the inventory's fleet (or on ``fleet`` when given: the
    test of concurrent clients); tokens of a red and a blue requester."""
    app = create_app(inventory_of(db), settings=Settings(home=home, provision_on_approval=False))
    if fleet is not None:
        rules, prices = load_rules(), Prices.of(load_cost_model())
        app.state.requests = RequestService(db, rules, prices, lambda: fleet)
    users, store = UserService(db), TokenStore(db)
    tokens = []
    for dept in ("red", "blue"):
        users.add(f"req-{dept}", roles=["requester"], departments=[dept])
        tokens.append(store.create(f"req-{dept}-token", f"req-{dept}"))
    return app, tokens


def fleet_reads(db: Database, svc: RequestService, changed: int) -> list[tuple[str, float, float]]:
    """The live fleet as a decision reads it: cold, unchanged, after one VM changed and after
    the VMs of ``changed`` hosts changed (as a sync of those hosts leaves them): seconds of
    the fleet read, and of the placement state built on it."""
    out = []
    with db.session() as s:
        hosts = list(s.scalars(select(m.Host.id).order_by(m.Host.id)))
    stride = max(1, len(hosts) // max(changed, 1))
    for what, touched, grow in (
        ("cold (first read)", None, 0),
        ("unchanged", [], 0),
        ("1 VM changed", hosts[:1], 0),
        (f"{changed} hosts' VMs changed", hosts[::stride][:changed], 0),
        (f"{changed} hosts' VMs resized", hosts[1::stride][:changed], 1),
    ):
        if touched:
            later = datetime.now(UTC)
            with db.engine.begin() as conn:
                conn.execute(
                    update(m.VM)
                    .where(m.VM.host_id.in_(touched))
                    .values(
                        meta_version=m.VM.meta_version + 1,
                        memory_mib=m.VM.memory_mib + grow,
                        updated_at=later,
                    )
                )
        t0 = time.perf_counter()
        svc.fleet()
        t1 = time.perf_counter()
        svc.base_state()
        out.append((what, t1 - t0, time.perf_counter() - t0))
    return out


def _pct(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def decide(svc: RequestService, n: int) -> tuple[list[float], list[float]]:
    """``n`` submits one after another: wall and CPU seconds of each decision."""
    wall, cpu = [], []
    for _ in range(n):
        draft = svc.create(spec("blue"), ADMIN)
        t0, c0 = time.perf_counter(), time.thread_time()
        done = svc.submit(draft.id, ADMIN)
        cpu.append(time.thread_time() - c0)
        wall.append(time.perf_counter() - t0)
        assert done.state.value == "approved", done.reasons
    return wall, cpu


def _row(what: str, values: list[float]) -> str:
    return (
        f"| {what} | {len(values)} | {1000 * statistics.median(values):.1f} | "
        f"{1000 * _pct(values, 99):.1f} |"
    )


def run(args: argparse.Namespace, make_db: Callable[[], Database]) -> None:
    fleet = make_fleet(args.hosts)
    home = Path(tempfile.mkdtemp(prefix="bench-requests-home-"))
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"({os.cpu_count()} CPUs)")  # fmt: skip
    db = make_db()
    load_inventory(db, fleet)
    svc = service(db, home)
    reads = fleet_reads(db, svc, args.changed)
    base = svc.base_state()
    print(f"inventory: {base.n_hosts:,} hosts, {len(base.placement):,} running VMs, N+1 kept")
    print()
    print("| live fleet read (placement state = fleet read + the engine's state) | fleet ms | "
          "placement state ms |")  # fmt: skip
    print("| --- | ---: | ---: |")
    for what, fleet_s, state_s in reads:
        print(f"| {what} | {1000 * fleet_s:,.0f} | {1000 * state_s:,.0f} |")
    pure = []
    for _ in range(args.decisions):
        t0 = time.perf_counter()
        place_request(base, [], 1, SIZE, failures=1)
        pure.append(time.perf_counter() - t0)
    svc.create(spec("blue"), ADMIN, submit=True)  # warm-up, not counted
    wall, cpu = decide(svc, args.decisions)
    print()
    print("| decisions (submit: lock, quota, placement, reservation) | n | p50 ms | p99 ms |")
    print("| --- | ---: | ---: | ---: |")
    print(_row("placement alone (engine, no database)", pure))
    print(_row(f"one at a time, {db.backend}, wall", wall))
    print(_row(f"one at a time, {db.backend}, CPU of the deciding thread", cpu))
    db.dispose()

    db = make_db()
    load_inventory(db, fleet)
    app, tokens = serve_app(db, None, home)
    quota = args.requests // 4
    QuotaService(db, Prices.of(load_cost_model()), svc.clock).set("red", Limits(vms=quota), ADMIN)
    app.state.requests.base_state()  # type: ignore[attr-defined]  # the fleet read once
    with serving(app) as url:
        got = storm(url, tokens, ["red", "blue"], args.requests, args.clients)
    app.state.jobs.shutdown(wait=True)  # type: ignore[attr-defined]
    lat = got.latencies_s
    print()
    print("| concurrent HTTP submits | clients | requests | errors | req/s | p50 ms | p99 ms |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    print(f"| uvicorn, {db.backend} | {args.clients} | {len(lat)} | {len(got.errors)} | "
          f"{len(lat) / got.seconds:.1f} | {1000 * statistics.median(lat):.0f} | "
          f"{1000 * _pct(lat, 99):.0f} |")  # fmt: skip
    red = approved_in(db, "red")
    decided = app.state.requests.base_state().fleet  # type: ignore[attr-defined]
    print()
    print(f"outcomes: {dict(sorted(got.states.items()))}")
    print(f"red quota {quota} VMs: {red} approved ({'ok' if red <= quota else 'EXCEEDED'}); "
          f"overbooked: {overbooked(decided, db, 1) or 'none'}")  # fmt: skip
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for e in got.errors[:5]:
        print("error:", e)
    db.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hosts", type=int, default=10_000)
    ap.add_argument("--decisions", type=int, default=300)
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--changed", type=int, default=100, help="hosts changed for the re-read")
    ap.add_argument("--pg-url", default=None)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-requests-"))
    counter = iter(range(1_000_000))

    def make_db() -> Database:
        if args.pg_url:
            return fresh_database(args.pg_url, reset_pg=True)
        return fresh_database(f"sqlite:///{tmp / f'corral-{next(counter)}.db'}", reset_pg=False)

    run(args, make_db)


if __name__ == "__main__":
    main()
