"""Shards are real processes (``corral poll run``) sharing hosts through lease rows: one is
SIGKILLed while it holds hosts, and the other reads those hosts once the leases run out, so
every host is still read within the cycle (PostgreSQL: ``FOR UPDATE SKIP LOCKED``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from cryptography.fernet import Fernet
from sqlalchemy import select

from corral.hypervisor.uri import HostAccess
from corral.inventory.hosts_file import HostEntry
from corral.inventory.service import Inventory
from corral.security.secrets import SecretBox
from corral.services.poll_store import PollStore
from corral.store import models as m
from corral.store.db import Database
from tests.conftest import _pg_url
from tests.freshdb import fresh_postgresql
from tests.inventory.test_bulk_sync_properties import VM, Disk, Host, _write_node

CYCLE_S, LEASE_S = 20.0, 3.0
SMALL, BIG = 16, 4  # hosts of 3 VMs, and hosts of 600 VMs (read slowly: held for a while)


def _fleet(folder: Path) -> list[Path]:
    paths = []
    for h in range(SMALL + BIG):
        host = Host(f"p{h:02d}")
        for i in range(600 if h >= SMALL else 3):
            host.vms.append(
                VM(
                    uuid=f"{h:08x}-0000-4000-8000-{i:012x}",
                    name=f"p{h}-vm{i}",
                    state="running",
                    vcpus=1,
                    memory_mib=512,
                    owner=None,
                    department=None,
                    disks=[Disk("vda", f"p{h}-vm{i}.qcow2", 1)],
                    macs=[f"52:54:01:{h:02x}:{i >> 8:02x}:{i & 255:02x}"],
                    snapshot_at=None,
                )
            )
        path = folder / f"{host.name}.xml"
        _write_node(path, host)
        paths.append(path)
    return paths


def _shard(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A ``corral poll run`` process; what it says goes to ``log`` (shown when it ends)."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "corral", "poll", "run", "--shards", "1"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _held(db: Database, pid: int) -> set[str]:
    """Hosts whose lease a process holds (the owner name carries its pid)."""
    now = datetime.now(UTC)
    with db.session() as s:
        rows = s.execute(
            select(m.Host.name, m.PollState.lease_owner)
            .join(m.PollState)
            .where(m.PollState.lease_until > now)
        ).all()
    return {name for name, owner in rows if owner and owner.split(":")[1] == str(pid)}


def _kill_holding(db: Database, procs: list[subprocess.Popen[bytes]]) -> tuple[int, set[str]]:
    """Freeze a shard that holds hosts, note them, and SIGKILL it."""
    give_up = time.monotonic() + CYCLE_S * 3
    while time.monotonic() < give_up:
        for p in procs:
            if _held(db, p.pid):
                os.kill(p.pid, signal.SIGSTOP)
                held = _held(db, p.pid)
                if held:
                    os.kill(p.pid, signal.SIGKILL)
                    p.wait()
                    return p.pid, held
                os.kill(p.pid, signal.SIGCONT)
        time.sleep(0.02)
    raise AssertionError("no shard was ever seen holding a host")


def test_a_killed_shards_hosts_are_read_by_the_others_within_the_cycle(tmp_path: Path) -> None:
    db = fresh_postgresql(_pg_url())
    nodes = tmp_path / "nodes"
    nodes.mkdir()
    inv = Inventory(db, SecretBox(Fernet.generate_key()), access=HostAccess(node_dir=nodes))
    inv.import_hosts([HostEntry(p.stem, f"test://{p}") for p in _fleet(nodes)])
    env = {
        **os.environ,
        "CORRAL_HOME": str(tmp_path / "home"),
        "CORRAL_DATABASE_URL": _pg_url(),
        "CORRAL_NODE_DIR": str(nodes),
        "CORRAL_POLL_CYCLE": str(CYCLE_S),
        "CORRAL_POLL_LEASE": str(LEASE_S),
    }
    start = datetime.now(UTC)
    logs = [tmp_path / "shard-0.log", tmp_path / "shard-1.log"]
    procs = [_shard(env, log) for log in logs]
    try:
        dead, held = _kill_holding(db, procs)
        killed_at = datetime.now(UTC)
        survivor, said = next((p, log) for p, log in zip(procs, logs, strict=True) if p.pid != dead)
        give_up = time.monotonic() + CYCLE_S + LEASE_S + 120  # a loaded machine is slow
        while time.monotonic() < give_up:
            status = PollStore(db).status(datetime.now(UTC), CYCLE_S)
            rows = _reads(db)
            if all(rows[h][0] is not None and rows[h][0] > killed_at for h in held) and all(
                read is not None and read >= start for read, _ in rows.values()
            ):
                break
            assert survivor.poll() is None, (
                f"the surviving shard ended:\n{said.read_text()[-3000:]}"
            )
            time.sleep(0.2)
        rows = _reads(db)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                p.wait()
    assert held, "the killed shard held no host"
    for name in held:  # taken over: read again after the kill, by the other shard
        read_at, by = rows[name]
        assert read_at is not None and read_at > killed_at and by.split(":")[1] != str(dead)
    assert all(read is not None and read >= start for read, _ in rows.values())
    assert status.hosts == SMALL + BIG and status.never_read == 0


def _reads(db: Database) -> dict[str, tuple[datetime | None, str]]:
    with db.session() as s:
        got = s.execute(
            select(m.Host.name, m.PollState.read_at, m.PollState.read_by).join(m.PollState)
        ).all()
    return {name: (read_at, by or "") for name, read_at, by in got}
