"""Snapshot sizes on a real libvirtd host with real QEMU/TCG guests (scripts/realhosts.sh).

An administrator's ``virsh snapshot-create-as --disk-only`` turns the guest's qcow2 pool volume
into the backing file of a new overlay in the same directory pool; after a pool refresh the
overlay is a volume whose allocation is what the snapshot holds. An internal qcow2 snapshot has
no size in any libvirt API, and Corral must say so rather than guess.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from guest import GuestFactory, create_volume, run_virsh
from tests.conftest import Clock

from corral.engines.costing import load_cost_model
from corral.engines.sprawl.analysis import analyse
from corral.engines.sprawl.detectors.snapshot_sprawl import SnapshotSprawlDetector
from corral.inventory.service import Inventory
from corral.services.records import fleet_records

MIB = 1024**2
GIB = 1024**3
WRITE_WAIT_S = 4.0  # the guest's disk load writes up to 16 MiB every second or so


@pytest.fixture
def real_inventory(inventory: Inventory, realhost_uris: list[str]) -> Inventory:
    inventory.add_host("real-1", realhost_uris[0])
    return inventory


def _snapshot(inv: Inventory, uuid: str, name: str) -> dict[str, Any]:
    snaps: dict[str, dict[str, Any]] = {s["name"]: s for s in inv.find_vm(uuid).snapshot_list}
    return snaps[name]


def _allocated_bytes(path: str) -> int:
    """What the file takes on disk, measured by the kernel, not by libvirt."""
    return os.stat(path).st_blocks * 512


def test_disk_only_snapshot_is_sized_by_its_overlay_and_priced(
    pool: Any,
    guest_factory: GuestFactory,
    real_inventory: Inventory,
    realhost_uris: list[str],
    clock: Clock,
) -> None:
    uri = realhost_uris[0]
    base = create_volume(pool, "ext-base.qcow2", size_mib=32)
    writer = guest_factory(0, load="disk", disk=base, wait_ready=True)
    run_virsh(uri, "snapshot-create-as", writer.name, "ext1", "--disk-only", "--atomic")
    holder = create_volume(pool, "int-base.qcow2", size_mib=16)
    idle = guest_factory(0, load="idle", disk=holder, wait_ready=True)
    run_virsh(uri, "snapshot-create-as", idle.name, "int1", "--description", "internal")

    real_inventory.sync()
    ext = _snapshot(real_inventory, writer.uuid, "ext1")
    overlay = ext["files"][0]
    assert ext["kind"] == "external" and len(ext["files"]) == 1
    assert ext["frozen"] == [str(base)]  # the guest's image, read-only from now on
    assert Path(overlay).parent == base.parent and overlay != str(base)
    assert ext["size_bytes"] is None  # the pool has not been refreshed: not a volume yet

    time.sleep(WRITE_WAIT_S)  # the guest writes into the overlay now
    run_virsh(uri, "destroy", writer.name)  # and stops, so the size holds still
    pool.refresh(0)
    real_inventory.sync()
    ext = _snapshot(real_inventory, writer.uuid, "ext1")
    written = _allocated_bytes(overlay)
    assert written > 1 * MIB  # the guest's writes since the snapshot
    assert ext["size_bytes"] == written
    internal = _snapshot(real_inventory, idle.uuid, "int1")
    assert (internal["kind"], internal["files"], internal["size_bytes"]) == ("internal", [], None)

    # Thirty days on, both snapshots are older than the detector's 14 days: the external one is
    # priced at its overlay's size, the internal one holds no money (size unknown).
    clock.now = datetime.now(UTC) + timedelta(days=30)
    vms, hosts, _ = fleet_records(real_inventory)
    ours = [v for v in vms if v.uuid in (writer.uuid, idle.uuid)]
    analysis = analyse(
        ours, clock.now, load_cost_model(), hosts=hosts, detectors=[SnapshotSprawlDetector()]
    )
    found = {f.subject: f for f in analysis.findings}
    price = load_cost_model().storage.snapshot_price_per_gb_month
    assert found[writer.uuid].monthly_cost_held == pytest.approx(written / GIB * price)
    assert found[writer.uuid].evidence.measures["sizes_unknown"] == 0
    assert found[idle.uuid].monthly_cost_held == 0.0
    assert found[idle.uuid].evidence.measures["sizes_unknown"] == 1


def test_external_chain_is_in_use_and_deleted_whole(
    pool: Any,
    guest_factory: GuestFactory,
    real_inventory: Inventory,
    realhost_uris: list[str],
) -> None:
    """Two disk-only snapshots: the base and the first overlay are the VM's, not orphans; deleting
    the VM deletes the whole chain."""
    uri = realhost_uris[0]
    base = create_volume(pool, "chain-base.qcow2", size_mib=16)
    g = guest_factory(0, disk=base, wait_ready=True)
    run_virsh(uri, "snapshot-create-as", g.name, "s1", "--disk-only", "--atomic")
    run_virsh(uri, "snapshot-create-as", g.name, "s2", "--disk-only", "--atomic")
    pool.refresh(0)
    real_inventory.sync()
    chain = {
        str(base),
        *(f for s in ("s1", "s2") for f in _snapshot(real_inventory, g.uuid, s)["files"]),
    }
    assert len(chain) == 3
    orphans = {v["path"] for v in real_inventory.list_volumes(orphaned_only=True)}
    assert not chain & orphans
    hv = real_inventory.open_host("real-1")
    deleted = hv.delete_vm(g.uuid)
    assert deleted is not None and set(deleted) == chain
    pool.refresh(0)
    assert not {v for v in pool.listVolumes() if v.startswith("chain-base")}
    assert not any(Path(p).exists() for p in chain)
