"""Issue 15 item 7: a first sync killed (SIGKILL) while it writes leaves nothing half-written.

A real child process syncs a fleet of 1,600 VMs and says when it has read every host; it is
killed at a random moment of its writes (spread over the time a whole write took). The store
must then hold all of the sync or none of it (no VM without its volumes and events), and a
later sync must store the whole fleet once, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
import uuid as uuidlib
from pathlib import Path

from cryptography.fernet import Fernet
from sqlalchemy import delete, func, select, update

from corral.hypervisor.uri import HostAccess
from corral.inventory.hosts_file import HostEntry
from corral.inventory.service import Inventory
from corral.security.secrets import SecretBox
from corral.store import models as m
from corral.store.db import Database
from tests.inventory.test_bulk_sync_properties import VM, Disk, Host, _write_node

HOSTS, VMS_PER_HOST = 4, 400
KILLS = 5
FULL = (HOSTS * VMS_PER_HOST,) * 3  # VMs, volumes, events of a whole first sync

CHILD = """
import sys
from pathlib import Path
from cryptography.fernet import Fernet
from corral.hypervisor.uri import HostAccess
from corral.inventory.service import Inventory
from corral.security.secrets import SecretBox
from corral.store.db import Database

url, folder = sys.argv[1], sys.argv[2]

def progress(name, done, total):
    if done == total:
        print("read", flush=True)

access = HostAccess(node_dir=Path(folder))
inv = Inventory(Database(url), SecretBox(Fernet.generate_key()), access=access)
inv.sync(progress=progress)
print("committed", flush=True)
"""


def _fleet(folder: Path) -> list[Path]:
    rng = random.Random(7)
    paths = []
    for h in range(HOSTS):
        host = Host(f"h{h}")
        for i in range(VMS_PER_HOST):
            host.vms.append(
                VM(
                    uuid=str(uuidlib.UUID(int=rng.getrandbits(128), version=4)),
                    name=f"h{h}-vm{i}",
                    state=rng.choice(["running", "shutoff"]),
                    vcpus=2,
                    memory_mib=2048,
                    owner=rng.choice([None, "alice"]),
                    department="R&D",
                    disks=[Disk("vda", f"h{h}-vm{i}.qcow2", 20)],
                    macs=[f"52:54:00:{h:02x}:{i >> 8:02x}:{i & 255:02x}"],
                    snapshot_at=None,
                )
            )
        path = folder / f"{host.name}.xml"
        _write_node(path, host)
        paths.append(path)
    return paths


def _counts(db: Database) -> tuple[int, int, int]:
    with db.session() as s:
        return (
            s.scalar(select(func.count()).select_from(m.VM)) or 0,
            s.scalar(select(func.count()).select_from(m.Volume)) or 0,
            s.scalar(select(func.count()).select_from(m.Event)) or 0,
        )


def _forget_sync(db: Database) -> None:
    """Back to before the first sync: the hosts registered, nothing read."""
    with db.session() as s:
        for model in (m.Event, m.Volume, m.Pool, m.Network, m.VM):
            s.execute(delete(model))
        s.execute(
            update(m.Host).values(status="never-synced", last_sync_at=None, storage_fingerprint="")
        )


def _child_sync(url: str, folder: Path, script: Path, kill_after_s: float | None) -> float | None:
    """Run a sync in a child process; kill it ``kill_after_s`` after it read every host (None:
    let it finish). Returns how long it wrote before it committed, None when killed first."""
    proc = subprocess.Popen(
        [sys.executable, str(script), url, str(folder)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "read", "the child died before reading the hosts"
    read_at = time.monotonic()
    if kill_after_s is not None:
        time.sleep(kill_after_s)
        proc.kill()
    rest = proc.stdout.readline().strip()
    proc.wait(timeout=120)
    return time.monotonic() - read_at if rest == "committed" else None


def test_a_first_sync_killed_while_writing_leaves_nothing_and_the_next_one_stores_all(
    db: Database, tmp_path: Path
) -> None:
    folder = tmp_path / "nodes"
    folder.mkdir()
    paths = _fleet(folder)
    inv = Inventory(db, SecretBox(Fernet.generate_key()), access=HostAccess(node_dir=Path(folder)))
    inv.import_hosts([HostEntry(p.stem, f"test://{p}") for p in paths])
    script = tmp_path / "child.py"
    script.write_text(CHILD, encoding="utf-8")
    url = db.engine.url.render_as_string(hide_password=False)
    db.engine.dispose()  # SQLite: no connection of ours in the way of the child's writes
    writing_s = _child_sync(url, folder, script, None)
    assert writing_s is not None and _counts(db) == FULL
    rng = random.Random(15)
    killed_mid_write = 0
    for _ in range(KILLS):
        _forget_sync(db)
        if _child_sync(url, folder, script, rng.uniform(0.0, writing_s)) is None:
            killed_mid_write += 1
        assert _counts(db) in ((0, 0, 0), FULL), "a killed sync left part of its writes"
    assert killed_mid_write > 0, "no kill landed before the commit"
    if _counts(db) == (0, 0, 0):
        assert inv.sync().count_of("created") == HOSTS * VMS_PER_HOST
    assert _counts(db) == FULL
    with db.session() as s:
        created = s.scalars(select(m.Event.vm_uuid).where(m.Event.kind == "created")).all()
    assert len(set(created)) == len(created) == HOSTS * VMS_PER_HOST  # each VM created once
    inv.close()
