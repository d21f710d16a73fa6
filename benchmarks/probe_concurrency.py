"""Concurrency probe: mixed GET / PATCH / list / sync requests on ONE VM against a real server.

    .venv/bin/python benchmarks/probe_concurrency.py [--requests 200] [--pg-url URL]

A uvicorn server on a free loopback port serves Corral's API over a test-driver host with one
VM; client threads (httpx) send the requests at once. Four writer threads each own one
metadata field and PATCH it with values of their own; reader threads GET the VM, list the
VMs and now and then ask for a sync. After every acknowledged PATCH its writer checks that
the database (the answer) and the domain's libvirt <metadata> (read through a fresh libvirt
connection) both hold its value; at the end the database, the domain and a following sync
must all hold every writer's last value. A value missing anywhere is a lost update.

Prints: requests, errors, lost updates, p50/p99 latency, overall and per kind of request,
after one uncounted warm-up request of each kind. Target (issue 9): 0 errors,
0 lost updates, p99 under 1 s.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import tempfile
import threading
import time
import uuid as uuidlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import libvirt
import uvicorn
from benchdb import fresh_database
from cryptography.fernet import Fernet
from lxml import etree

from corral.api.app import create_app
from corral.config import Settings
from corral.hypervisor.domxml import METADATA_NS
from corral.hypervisor.uri import HostAccess
from corral.inventory.service import Inventory
from corral.security.secrets import SecretBox
from corral.security.token_store import TokenStore
from corral.store.db import Database

FIELDS = ("owner", "department", "project", "purpose")
TEST_NS = "http://libvirt.org/schemas/domain/test/1.0"
VM_UUID = "5eed0000-0000-4000-8000-000000000001"
VM_NAME = "probe-vm"

DomainReader = Callable[[], dict[str, str | None]]


@dataclass
class ProbeResult:
    requests: int = 0
    errors: int = 0
    lost_updates: int = 0
    latencies_s: list[float] = field(default_factory=list)
    by_kind: dict[str, list[float]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, kind: str, seconds: float, ok: bool, problem: str | None = None) -> None:
        with self.lock:
            self.requests += 1
            self.latencies_s.append(seconds)
            self.by_kind.setdefault(kind, []).append(seconds)
            if not ok:
                self.errors += 1
                if problem:
                    self.problems.append(problem)

    def lost(self, problem: str) -> None:
        with self.lock:
            self.lost_updates += 1
            self.problems.append(problem)

    def percentile_ms(self, q: float, kind: str | None = None) -> float:
        data = sorted(self.latencies_s if kind is None else self.by_kind[kind])
        if not data:
            return 0.0
        return 1000 * data[min(len(data) - 1, int(q * len(data)))]


def node_file(path: Path) -> Path:
    """A test-driver host with the probe's one running VM."""
    node = etree.Element("node")
    cpu = etree.SubElement(node, "cpu")
    for tag, value in (("mhz", "2000"), ("model", "X"), ("nodes", "1"), ("sockets", "1"),
                       ("cores", "4"), ("threads", "1"), ("active", "4")):  # fmt: skip
        etree.SubElement(cpu, tag).text = value
    etree.SubElement(node, "memory").text = str(16 * 1024 * 1024)
    dom = etree.SubElement(node, "domain", type="test")
    etree.SubElement(dom, "name").text = VM_NAME
    etree.SubElement(dom, "uuid").text = VM_UUID
    etree.SubElement(dom, "memory", unit="MiB").text = "512"
    etree.SubElement(dom, "vcpu").text = "1"
    etree.SubElement(etree.SubElement(dom, "os"), "type").text = "hvm"
    etree.SubElement(dom, f"{{{TEST_NS}}}runstate").text = "1"
    path.write_bytes(etree.tostring(node))
    return path


def libvirt_reader(uri: str, uuid: str) -> DomainReader:
    """Corral's fields in the domain's <metadata>, read through a fresh libvirt connection."""

    def read() -> dict[str, str | None]:
        conn = libvirt.open(uri)
        try:
            dom = conn.lookupByUUIDString(uuid)
            try:
                xml = dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, METADATA_NS, 0)
            except libvirt.libvirtError:
                return dict.fromkeys(FIELDS)
        finally:
            conn.close()
        root = etree.fromstring(xml.encode())
        return {f: root.findtext(f) for f in FIELDS}

    return read


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serving(app: Any) -> Iterator[str]:
    """The app under a real uvicorn server on a free loopback port; yields its base URL."""
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def run_probe(
    base_url: str, token: str, uuid: str, read_domain: DomainReader, *, requests: int = 200
) -> ProbeResult:
    """Send ``requests`` mixed requests at once; count errors and lost updates."""
    result = ProbeResult()
    headers = {"Authorization": f"Bearer {token}"}
    per_writer = max(1, requests // (2 * len(FIELDS)))
    readers = 8
    reads = max(readers, requests - per_writer * len(FIELDS))
    last: dict[str, str] = {}
    start = threading.Barrier(len(FIELDS) + readers)

    def call(client: httpx.Client, method: str, url: str, **kw: Any) -> httpx.Response | None:
        kind = f"{method} {url.replace(uuid, '{id}')}"
        t0 = time.perf_counter()
        try:
            resp = client.request(method, url, headers=headers, **kw)
        except httpx.HTTPError as exc:
            result.record(kind, time.perf_counter() - t0, False, f"{method} {url}: {exc}")
            return None
        ok = resp.status_code < 400
        problem = None if ok else f"{method} {url}: {resp.status_code} {resp.text[:200]}"
        result.record(kind, time.perf_counter() - t0, ok, problem)
        return resp if ok else None

    def writer(name: str) -> None:
        with httpx.Client(base_url=base_url, timeout=60) as client:
            start.wait()
            for i in range(per_writer):
                value = f"{name}-{i}-{uuidlib.uuid4().hex[:6]}"
                resp = call(client, "PATCH", f"/api/v1/vms/{uuid}/metadata", json={name: value})
                if resp is None:
                    continue
                last[name] = value
                if resp.json().get(name) != value:
                    result.lost(f"{name}={value} acknowledged but not in the answer")
                if read_domain().get(name) != value:
                    result.lost(f"{name}={value} acknowledged but not in the domain")

    def reader(k: int) -> None:
        with httpx.Client(base_url=base_url, timeout=60) as client:
            start.wait()
            for i in range(reads // readers + (k < reads % readers)):
                if i % 10 == 9:
                    call(client, "POST", "/api/v1/sync")
                elif (i + k) % 2:
                    call(client, "GET", f"/api/v1/vms/{uuid}")
                else:
                    call(client, "GET", "/api/v1/vms", params={"limit": 50})

    _warm_up(base_url, headers, uuid)
    threads = [threading.Thread(target=writer, args=(f,)) for f in FIELDS]
    threads += [threading.Thread(target=reader, args=(k,)) for k in range(readers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _final_check(base_url, headers, uuid, read_domain, last, result)
    return result


def _warm_up(base_url: str, headers: dict[str, str], uuid: str) -> None:
    """One request of each kind, one after another and not counted: a server's first answer
    to a route builds its validators and imports what the route uses, once per process."""
    with httpx.Client(base_url=base_url, timeout=60, headers=headers) as client:
        client.get("/api/v1/vms", params={"limit": 50}).raise_for_status()
        vm = client.get(f"/api/v1/vms/{uuid}")
        vm.raise_for_status()
        owner = vm.json().get("owner")
        client.patch(f"/api/v1/vms/{uuid}/metadata", json={"owner": owner}).raise_for_status()
        client.post("/api/v1/sync").raise_for_status()


def _final_check(
    base_url: str,
    headers: dict[str, str],
    uuid: str,
    read_domain: DomainReader,
    last: dict[str, str],
    result: ProbeResult,
) -> None:
    """Database, domain, and the database after one more sync: each writer's last value."""
    with httpx.Client(base_url=base_url, timeout=60, headers=headers) as client:
        db_before = client.get(f"/api/v1/vms/{uuid}").json()
        domain = read_domain()
        client.post("/api/v1/sync").raise_for_status()
        db_after = client.get(f"/api/v1/vms/{uuid}").json()
    for name, value in last.items():
        for where, seen in (("database", db_before), ("domain", domain), ("sync", db_after)):
            if seen.get(name) != value:
                result.lost(f"{name}={value} lost from the {where} (has {seen.get(name)!r})")


def print_table(label: str, r: ProbeResult) -> None:
    print(f"{'store':<12} {'requests':>8} {'errors':>7} {'lost updates':>13} "
          f"{'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")  # fmt: skip
    print(
        f"{label:<12} {r.requests:>8} {r.errors:>7} {r.lost_updates:>13} "
        f"{r.percentile_ms(0.50):>8.1f} {r.percentile_ms(0.99):>8.1f} "
        f"{1000 * max(r.latencies_s, default=0):>8.1f}"
    )
    for kind in sorted(r.by_kind):
        n = len(r.by_kind[kind])
        print(
            f"  {kind:<34} {n:>5} requests   p50 {r.percentile_ms(0.5, kind):>7.1f} ms   "
            f"p99 {r.percentile_ms(0.99, kind):>7.1f} ms"
        )
    for p in r.problems[:10]:
        print("  ", p)


def probe(db: Database, requests: int, home: Path) -> ProbeResult:
    """The whole set-up on a migrated store: host, first sync, token, server; then the probe."""
    inv = Inventory(db, SecretBox(Fernet.generate_key()), access=HostAccess(node_dir=home))
    uri = f"test://{node_file(home / 'probe-host.xml')}"
    inv.add_host("probe-host", uri)
    inv.sync()
    token = TokenStore(db).create("probe")
    url = db.url.render_as_string(hide_password=False)
    app = create_app(inv, settings=Settings(home=home, database_url=url, node_dir=home))
    try:
        with serving(app) as base_url:
            return run_probe(base_url, token, VM_UUID, libvirt_reader(uri, VM_UUID),
                             requests=requests)  # fmt: skip
    finally:
        inv.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--pg-url", help="also probe on this (emptied!) PostgreSQL database")
    args = ap.parse_args()
    libvirt.registerErrorHandler(lambda _c, _e: None, None)
    with tempfile.TemporaryDirectory() as tmp:
        db = fresh_database(f"sqlite:///{Path(tmp) / 'corral.db'}", False)
        sqlite = probe(db, args.requests, Path(tmp))
        db.dispose()
    print_table("sqlite", sqlite)
    results = [sqlite]
    if args.pg_url:
        with tempfile.TemporaryDirectory() as tmp:
            db = fresh_database(args.pg_url, True)
            pg = probe(db, args.requests, Path(tmp))
            db.dispose()
        print_table("postgresql", pg)
        results.append(pg)
    print(f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; target p99 < 1 s)")
    # Errors and lost updates are failures; the latency is a figure for the table.
    if any(r.errors or r.lost_updates for r in results):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
