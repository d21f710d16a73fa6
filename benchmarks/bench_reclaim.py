"""The reclamation workflow at fleet scale: flag, notify, quarantine, archive, delete.

    .venv/bin/python benchmarks/bench_reclaim.py [--hosts 10] [--vms-per-host 200]
        [--share 0.2] [--pg-url URL]

A seeded test-driver fleet is synced; a share of its VMs is flagged and taken
through every step by the scheduler (policy without waiting periods, one
delete approval), each notification sent over SMTP to a real aiosmtpd server
on loopback. Prints one row per stage: cases, wall seconds, ms per case.
"""

from __future__ import annotations

import argparse
import random
import socket
import sys
import tempfile
import time
from pathlib import Path

from aiosmtpd.controller import Controller
from cryptography.fernet import Fernet

sys.path.insert(0, str(Path(__file__).parent))
from benchdb import fresh_database
from fleetgen import write_fleet

from corral.engines.costing import load_cost_model
from corral.engines.reclaim import Policy
from corral.hypervisor.uri import HostAccess
from corral.inventory.service import Inventory
from corral.notify.mailer import SmtpMailer, SmtpSettings
from corral.reclaim.service import Recipients, ReclaimService
from corral.security.secrets import SecretBox


class Count:
    def __init__(self) -> None:
        self.n = 0

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.n += 1
        return "250 OK"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bench(
    url: str, paths: list[Path], share: float, reset_pg: bool
) -> list[tuple[str, int, float]]:
    db = fresh_database(url, reset_pg)
    access = HostAccess(node_dir=paths[0].parent)  # the fleet's node files
    inv = Inventory(db, SecretBox(Fernet.generate_key()), access=access)
    for p in paths:
        inv.add_host(p.stem, f"test://{p}")
    inv.sync()
    inbox = Count()
    port = _port()
    smtp = Controller(inbox, hostname="127.0.0.1", port=port)
    smtp.start()
    policy = Policy(notice_days=0, quarantine_days=0, cooling_off_days=0, approvals={"delete": 1})
    svc = ReclaimService(
        inv,
        policy,
        load_cost_model(None),
        SmtpMailer(SmtpSettings("127.0.0.1", port, "corral@bench.test")),
        recipients=Recipients(domain="bench.test", fallback="admins@bench.test"),
    )
    vms = sorted(v.name for v in inv.list_vms(limit=1_000_000).items if not v.is_template)
    chosen = random.Random(7).sample(vms, int(len(vms) * share))
    rows: list[tuple[str, int, float]] = []
    t0 = time.perf_counter()
    ids = [svc.flag(n, category="idle", reason="bench", actor="ops").id for n in chosen]
    rows.append(("flag", len(ids), time.perf_counter() - t0))
    for stage in ("notify", "quarantine", "archive"):
        t0 = time.perf_counter()
        done = [o for o in svc.run() if o.result == "done"]
        rows.append((stage, len(done), time.perf_counter() - t0))
    t0 = time.perf_counter()
    for i in ids:
        svc.approve(i, "delete", "manager")
    rows.append(("approve", len(ids), time.perf_counter() - t0))
    t0 = time.perf_counter()
    done = [o for o in svc.run() if o.result == "done"]
    rows.append(("delete", len(done), time.perf_counter() - t0))
    smtp.stop()
    rows.append(("e-mails received", inbox.n, 0.0))
    inv.close()
    db.dispose()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=10)
    ap.add_argument("--vms-per-host", type=int, default=200)
    ap.add_argument("--share", type=float, default=0.2)
    ap.add_argument("--pg-url", default=None)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="corral-bench-reclaim-") as tmp:
        targets = [("SQLite", f"sqlite:///{tmp}/bench.db", False)]
        if a.pg_url:
            targets.append(("PostgreSQL", a.pg_url, True))
        print(f"{a.hosts} test-driver hosts x {a.vms_per_host} VMs, {a.share:.0%} flagged")
        print(f"{'database':<11} {'stage':<17} {'cases':>6} {'wall s':>8} {'ms/case':>8}")
        for label, url, reset in targets:
            paths = write_fleet(Path(tmp) / f"nodes-{label}", a.hosts, a.vms_per_host)
            for stage, n, secs in bench(url, paths, a.share, reset):
                per = f"{1000 * secs / n:8.1f}" if n and secs else f"{'':>8}"
                wall = f"{secs:8.2f}" if secs else f"{'':>8}"
                print(f"{label:<11} {stage:<17} {n:>6} {wall} {per}")


if __name__ == "__main__":
    main()
