"""``corral export`` streams the VMs: the same files as reading them all at once, in bounded
memory (issue 16: the export of 100,000 VMs held every row, and every row's summary, at once).

The oracle is the export as it was before streaming (every VM row read in one list, each table
built in memory, then written), kept here to compare against byte for byte.
"""

from __future__ import annotations

import json
import random
import tracemalloc
import uuid as uuidlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import select

from corral.domain import csvsafe
from corral.inventory.export import TABLES
from corral.inventory.records import vm_summary
from corral.inventory.service import Inventory
from corral.inventory.views import as_row
from corral.store import models as m
from corral.store.bulk import bulk_insert


def _random_fleet(inv: Inventory, n: int, seed: int) -> None:
    """``n`` VMs on 3 hosts: some tombstoned, some sharing a name, disks whose dicts differ in
    keys (as older syncs stored them), snapshots, formula-looking owners, unicode names."""
    rng = random.Random(seed)
    now = datetime(2026, 11, 1, tzinfo=UTC)
    with inv.db.session() as s:
        bulk_insert(
            s,
            m.Host,
            [
                {"id": i + 1, "name": f"h{i}", "uri": f"test:///h{i}.xml", "created_at": now}
                for i in range(3)
            ],
        )
        vms = [_vm(rng, i, now) for i in range(n)]
        bulk_insert(s, m.VM, vms)
        _random_storage(s, rng, vms, now)


def _random_storage(s: Any, rng: random.Random, vms: list[dict[str, Any]], now: datetime) -> None:
    """Two pools a host, one of them storage hosts 0 and 1 share (its volumes listed once), and
    volumes used by a VM or by none, more than one chunk of them."""
    pools, volumes = [], []
    for h in range(3):
        for k, key in enumerate(("shared" if h < 2 else "", "")):
            pid = 10 * (h + 1) + k
            pools.append(
                {
                    "id": pid,
                    "host_id": h + 1,
                    "name": f"p{k}",
                    "uuid": str(uuidlib.UUID(int=pid)),
                    "type": "dir",
                    "path": f"/p{k}" if key else f"/h{h}/p{k}",
                    "active": True,
                    "capacity_bytes": 2**40,
                    "allocation_bytes": 2**39,
                    "available_bytes": 2**39,
                    "storage_key": key,
                }
            )
    for i in range(rng.randint(30, 60)):
        pool = rng.choice(pools)
        volumes.append(
            {
                "id": i + 1,
                "pool_id": pool["id"],
                "name": f"v{i:03d}.qcow2",
                "path": f"{pool['path']}/v{i:03d}.qcow2",
                "capacity_bytes": rng.randint(1, 9) * 2**30,
                "allocation_bytes": rng.randint(0, 2**30),
                "format": rng.choice(["qcow2", None]),
                "backing_path": None,
                "used_by": rng.choice([None, rng.choice(vms)["uuid"]]),
                "first_seen_at": now,
            }
        )
    # a shared storage's volume as every host sharing it sees it
    shared = [v for v in volumes if v["pool_id"] in (10, 20)]
    for v in shared:
        twin = 20 if v["pool_id"] == 10 else 10
        volumes.append({**v, "id": len(volumes) + 1000, "pool_id": twin})
    bulk_insert(s, m.Pool, pools)
    bulk_insert(s, m.Volume, volumes)


def _vm(rng: random.Random, i: int, now: datetime) -> dict[str, Any]:
    created = now - timedelta(days=rng.randint(1, 900))
    disks = []
    for d in range(rng.randint(0, 3)):
        disk: dict[str, Any] = {"target": f"vd{d}", "device": "disk", "path": f"/i/{i}-{d}"}
        if rng.random() < 0.5:
            disk["capacity_bytes"] = rng.randint(1, 99) * 2**30
        if rng.random() < 0.2:
            disk["backing_path"] = None
        disks.append(disk)
    snaps = [
        {"name": f"s{k}", "created_at": created.isoformat(), "files": ["a", "b"][: k + 1]}
        for k in range(rng.choice([0, 0, 0, 1, 2]))
    ]
    return {
        "uuid": str(uuidlib.UUID(int=rng.getrandbits(128), version=4)),
        # some names shared; some not ASCII (a JSON batch of those is written row by row)
        "name": f"vm-{rng.randrange(max(4, i // 3)):04d}" + ("-é" if rng.random() < 0.2 else ""),
        "host_id": rng.choice([1, 2, 3, None]),
        "state": rng.choice(["running", "shutoff", "paused", "no-such-state"]),
        "state_since": created,
        "vcpus": rng.choice([1, 2, 4]),
        "memory_max_mib": 4096,
        "memory_mib": rng.choice([512, 2048, 4096]),
        "disks": disks,
        "nics": [],
        "snapshots": snaps,
        "snapshot_count": len(snaps),
        "disk_bytes": sum(d.get("capacity_bytes", 0) for d in disks),
        "owner": rng.choice([None, "ann", "=cmd|' /C calc'!A0", "-3.5"]),
        "department": rng.choice([None, "R&D", 'Ops, "night"']),
        "tags": rng.sample(["a", "b", "=c"], rng.randint(0, 2)),
        "purpose": rng.choice([None, "", "@sum(A1)", "build farm"]),
        "expires_on": rng.choice([None, (now + timedelta(days=rng.randint(-9, 99))).date()]),
        "protection_tier": rng.choice([None, "gold"]),
        "is_template": rng.random() < 0.1,
        "created_at": created,
        "first_seen_at": created,
        "updated_at": created,
        "deleted_at": now if rng.random() < 0.1 else None,
        "fingerprint": "",
    }


def _old_export(inv: Inventory, folder: Path, fmt: str) -> None:
    """The export before streaming: every table in memory, then written."""
    with inv.db.session() as s:
        rows = s.execute(
            select(m.VM.__table__, m.Host.name.label("host_name"))
            .outerjoin(m.Host, m.VM.host_id == m.Host.id)
            .order_by(m.VM.name, m.VM.uuid)
        ).all()
        tables: dict[str, list[dict[str, Any]]] = {
            "hosts": [as_row(h) for h in inv.list_hosts()],
            "vms": [as_row(vm_summary(cast(m.VM, vm), vm.host_name)) for vm in rows],
            "disks": [{"vm_uuid": v.uuid, "vm_name": v.name, **d} for v in rows for d in v.disks],
            "snapshots": [
                {"vm_uuid": v.uuid, "vm_name": v.name, **sn} for v in rows for sn in v.snapshots
            ],
            "volumes": [as_row(v) for v in inv.list_volumes()],
        }
    folder.mkdir(parents=True)
    for name, table in tables.items():
        with open(folder / f"{name}.{fmt}", "w", newline="", encoding="utf-8") as fh:
            if fmt == "json":
                json.dump(table, fh, indent=2, default=str)
                continue
            cols: list[str] = []
            for r in table:
                cols.extend(k for k in r if k not in cols)
            writer = csvsafe.writer(fh)
            writer.writerow(cols)
            for r in table:
                writer.writerow([_old_cell(r.get(k)) for k in cols])


def _old_cell(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return ";".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return "" if value is None else value


@pytest.mark.parametrize("fmt", ["csv", "json"])
@pytest.mark.parametrize("chunk_size", [1, 7, 5000])
def test_streamed_export_writes_what_the_in_memory_export_wrote(
    inventory: Inventory, tmp_path: Path, fmt: str, chunk_size: int
) -> None:
    _random_fleet(inventory, 60, seed=chunk_size)
    _old_export(inventory, tmp_path / "old", fmt)
    written = inventory.export(tmp_path / "new", fmt, chunk_size=chunk_size)
    assert [p.name for p in written] == [f"{t}.{fmt}" for t in TABLES]
    for path in written:
        assert path.read_bytes() == (tmp_path / "old" / path.name).read_bytes(), path.name
        assert path.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == sorted(p.name for p in written)


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_an_empty_inventory_exports_what_it_did_before(
    inventory: Inventory, tmp_path: Path, fmt: str
) -> None:
    _old_export(inventory, tmp_path / "old", fmt)
    for path in inventory.export(tmp_path / "new", fmt, chunk_size=10):
        assert path.read_bytes() == (tmp_path / "old" / path.name).read_bytes(), path.name


def _peak_bytes(inv: Inventory, folder: Path) -> int:
    tracemalloc.start()
    try:
        inv.export(folder, "json", chunk_size=50)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_the_export_holds_a_chunk_of_vms_not_the_fleet(
    inventory: Inventory, tmp_path: Path
) -> None:
    """Peak Python memory of the export of 400 VMs and of 1,600 VMs: reading every row at once
    grew it fourfold; streamed in chunks of 50, it stays about the same."""
    _random_fleet(inventory, 400, seed=1)
    small = _peak_bytes(inventory, tmp_path / "small")
    with inventory.db.session() as s:
        for vm in s.scalars(select(m.VM)):
            s.delete(vm)
    _random_fleet_more(inventory, 1600)
    large = _peak_bytes(inventory, tmp_path / "large")
    assert large < 1.6 * small, (small, large)


def _random_fleet_more(inv: Inventory, n: int) -> None:
    rng = random.Random(2)
    now = datetime(2026, 11, 1, tzinfo=UTC)
    with inv.db.session() as s:
        bulk_insert(s, m.VM, [_vm(rng, i, now) for i in range(n)])
