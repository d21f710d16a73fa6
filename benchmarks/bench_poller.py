"""Sharded polling of 10,000 test-driver hosts x 10 VMs: import, first read, unchanged cycle.

    CORRAL_TEST_PG_URL=postgresql://... .venv/bin/python benchmarks/bench_poller.py [--hosts N]

Fixed fleet (benchmarks/fleetgen.py, seed 42). Steps, each timed wall and CPU (this process
and its children): ``corral hosts import``; the first read of every host (every host made due
at once, one shard process: every host is new, so every one goes through the sync); a full
cycle of unchanged hosts with 1 and with 2 shard processes (``corral poll run``), every host
made due at once, so the time is what one cycle needs (target: within the 300 s cycle); and,
in this process, the cost of one host unchanged (fingerprint equal: no database work) against
one host changed (a VM's memory edited in its node file: the sync runs).
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from lxml import etree
from sqlalchemy import func, select, update

sys.path.insert(0, str(Path(__file__).parent))
from benchdb import fresh_database
from fleetgen import write_fleet

from corral.config import load_settings
from corral.inventory.service import Inventory
from corral.services.poller import PollConfig, Shard
from corral.store import models as m

CYCLE_S = 300.0


def cpu_s() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def make_due(inv: Inventory, ids: list[int] | None = None) -> datetime:
    now = datetime.now(UTC)
    with inv.db.session() as s:
        q = update(m.PollState).values(due_at=now, lease_until=None)
        if ids is not None:
            q = q.where(m.PollState.host_id.in_(ids))
        s.execute(q)
    return now


def unread_since(inv: Inventory, t0: datetime) -> int:
    with inv.db.session() as s:
        st = m.PollState
        return int(
            s.scalar(select(func.count()).where((st.read_at.is_(None)) | (st.read_at < t0))) or 0
        )


def run_cycle(inv: Inventory, env: dict[str, str], shards: int) -> tuple[float, float]:
    """Every host due now; ``shards`` poller processes until each host has been read."""
    t0 = make_due(inv)
    c0, w0 = cpu_s(), time.perf_counter()
    cmd = [sys.executable, "-m", "corral", "poll", "run", "--shards", "1"]
    procs = [subprocess.Popen(cmd, env=env, stderr=subprocess.DEVNULL) for _ in range(shards)]
    try:
        while unread_since(inv, t0):
            time.sleep(0.5)
            if any(p.poll() is not None for p in procs):
                raise SystemExit("a poller process ended early")
        wall = time.perf_counter() - w0
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
            p.wait()
    return wall, cpu_s() - c0


def edit_vm(path: Path) -> None:
    tree = etree.parse(str(path))
    mem = tree.find("domain/memory")
    assert mem is not None and mem.text is not None
    mem.text = str(int(mem.text) + 1)
    path.write_bytes(etree.tostring(tree))


def per_host(inv: Inventory, ids: list[int]) -> float:
    """Seconds per host of one in-process shard reading exactly these hosts."""
    make_due(inv, ids)
    shard = Shard(inv, PollConfig(cycle_s=CYCLE_S, batch=len(ids), events=False))
    with inv.db.session() as s:  # leave the others alone: due in an hour
        s.execute(
            update(m.PollState)
            .where(m.PollState.host_id.not_in(ids))
            .values(due_at=datetime.fromtimestamp(time.time() + 3600, UTC))
        )
    t = time.perf_counter()
    done = shard.round()
    took = time.perf_counter() - t
    assert done == len(ids), (done, len(ids))
    return took / len(ids)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=10_000)
    ap.add_argument("--vms", type=int, default=10)
    ap.add_argument("--pg-url", default=os.environ.get("CORRAL_TEST_PG_URL"))
    args = ap.parse_args()
    rows: list[tuple[str, float, float, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        nodes = root / "nodes"
        paths = write_fleet(nodes, args.hosts, args.vms)
        hosts_csv = root / "hosts.csv"
        hosts_csv.write_text(
            "name,uri\n" + "".join(f"{p.stem},test://{p}\n" for p in paths), encoding="utf-8"
        )
        env = {**os.environ, "CORRAL_HOME": str(root / "home"), "CORRAL_NODE_DIR": str(nodes)}
        env["CORRAL_POLL_CYCLE"] = str(CYCLE_S)
        if args.pg_url:
            env["CORRAL_DATABASE_URL"] = args.pg_url
            fresh_database(args.pg_url, True).dispose()
        else:
            env.pop("CORRAL_DATABASE_URL", None)
        os.environ.update(env)
        c0, w0 = cpu_s(), time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "corral", "hosts", "import", str(hosts_csv)],
            env=env,
            check=True,
            capture_output=True,
        )
        rows.append(("import", time.perf_counter() - w0, cpu_s() - c0, "30"))
        inv = Inventory.from_settings(load_settings())
        Shard(inv, PollConfig(cycle_s=CYCLE_S, events=False))._plan(force=True)
        wall, cpu = run_cycle(inv, env, 1)
        rows.append(("first read (all new), 1 shard", wall, cpu, "-"))
        for n in (1, 2):
            wall, cpu = run_cycle(inv, env, n)
            rows.append((f"unchanged cycle, {n} shard{'s' * (n > 1)}", wall, cpu, "300"))
        with inv.db.session() as s:
            ids = dict(s.execute(select(m.Host.name, m.Host.id)).all())
        sample = sorted(ids)[:100]
        unchanged = per_host(inv, [ids[n] for n in sample])
        for name in sample:
            edit_vm(nodes / f"{name}.xml")
        changed = per_host(inv, [ids[n] for n in sample])
    db = "PostgreSQL" if args.pg_url else "SQLite"
    print(
        f"\n{args.hosts} hosts x {args.vms} VMs on {db}; {os.cpu_count()} CPUs; "
        f"load average {os.getloadavg()[0]:.1f} at the end"
    )
    print(f"{'step':<34} {'wall s':>8} {'CPU s':>8} {'target s':>9}")
    for step, wall, cpu, target in rows:
        print(f"{step:<34} {wall:>8.1f} {cpu:>8.1f} {target:>9}")
    print(f"{'per host, unchanged (in-process)':<34} {unchanged * 1000:>7.1f}ms")
    print(f"{'per host, changed (in-process)':<34} {changed * 1000:>7.1f}ms")


if __name__ == "__main__":
    main()
