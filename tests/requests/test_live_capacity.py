"""A decision places on the live inventory's fleet without reading the whole inventory each
time: the fleet is read again only when a host's capacity or a VM row changed, and a
decision after such a change places on the changed fleet."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

from sqlalchemy import insert, select, update

from corral.engines.planning.model import Fleet
from corral.inventory.service import Inventory
from corral.services.fleet import FleetSnapshot, live_fleet
from corral.services.live_capacity import LiveFleet, shared_fleet
from corral.store import models as m
from tests.inventory.conftest import nodes  # noqa: F401  (fixture)
from tests.provision.conftest import HOST, NODE


def test_the_fleet_is_read_again_only_after_the_inventory_changed(
    inventory: Inventory, tmp_path: Path
) -> None:
    node = tmp_path / "host-p.xml"
    shutil.copy(NODE, node)
    inventory.add_host(HOST, f"test://{node}")
    inventory.sync()
    live = LiveFleet(inventory)
    first = live()
    assert live() is first and live() is first and live.reads == 1
    running = next(v for v in first.vms if v.running)
    assert running.protection.value != "replicated"
    inventory.set_metadata(running.name, {"protection_tier": "replicated"}, actor="t")
    changed = live()
    assert changed is not first and live.reads == 2
    assert next(v for v in changed.vms if v.name == running.name).protection.value == "replicated"
    assert live() is changed and live.reads == 2
    inventory.remove_host(HOST)
    assert live().hosts == () and live.reads == 3  # a host gone is a change too


def _cold(inventory: Inventory) -> FleetSnapshot:
    """The fleet read whole, by a reader that never read it before."""
    return LiveFleet(inventory).snapshot()


def _same(live: LiveFleet, inventory: Inventory) -> Fleet:
    """The incremental read equals a whole read: the fleet (hosts by name, VMs by host in
    the same order), the records and the document (all but its time)."""
    got, cold = live.snapshot(), _cold(inventory)
    assert got.fleet == cold.fleet
    assert (got.vms, got.hosts, got.volumes) == (cold.vms, cold.hosts, cold.volumes)
    assert {**got.document, "now": None} == {**cold.document, "now": None}
    assert [v.name for v in got.fleet.vms] == [v.name for v in got.vms]
    return got.fleet


def test_the_incremental_read_gives_the_fleet_a_whole_read_gives(
    inventory: Inventory,
    nodes: Path,  # noqa: F811
) -> None:
    """Every rule of the live fleet: hosts never synced left out, VMs without sizes left out,
    a name seen twice made unique, paused VMs holding their host, the protection tier; and
    after one VM changed, only its host's VMs are read again, and the fleet, its records and
    its document equal those of a whole read."""
    for name in ("host-a", "host-b"):
        inventory.add_host(name, f"test://{nodes / f'{name}.xml'}")
    inventory.sync()
    now = inventory.clock()
    with inventory.db.engine.begin() as conn:
        conn.execute(
            insert(m.Host),
            [{"name": "never-synced", "uri": "test:///x", "status": "never-synced",
              "created_at": now, "cpu_features": [], "storage_fingerprint": ""}],
        )  # fmt: skip
        web, db1 = (
            conn.execute(select(m.VM.uuid).where(m.VM.name == n)).scalar_one()
            for n in ("web-01", "db-01")
        )
        cache = conn.execute(select(m.VM.uuid).where(m.VM.name == "cache-01")).scalar_one()
        conn.execute(update(m.VM).where(m.VM.uuid == cache).values(name="web-01"))
        conn.execute(update(m.VM).where(m.VM.uuid == db1).values(state="paused"))
    live = LiveFleet(inventory)
    first = _same(live, inventory)
    assert "never-synced" not in {h.name for h in first.hosts}
    assert {v.name for v in first.vms} >= {f"web-01#{web}", f"web-01#{cache}"}
    assert next(v for v in first.vms if v.name == "db-01").running  # paused holds its host
    assert live.reads == 1 and live.hosts_read == 3

    inventory.set_metadata(web, {"protection_tier": "replicated"}, actor="t")
    changed = _same(live, inventory)
    assert next(v for v in changed.vms if v.name == f"web-01#{web}").protection.value == (
        "replicated"
    )
    assert live.reads == 2 and live.hosts_read == 4  # host-a's VMs only
    with inventory.db.engine.begin() as conn:
        conn.execute(  # as a sync writes a rename: with the time of the change
            update(m.VM)
            .where(m.VM.uuid == cache)
            .values(name="cache-01", updated_at=now + timedelta(seconds=1))
        )
    renamed = _same(live, inventory)  # a rename ends the name seen twice: both named again
    assert {"web-01", "cache-01"} <= {v.name for v in renamed.vms}


def test_a_change_only_the_records_see_keeps_the_fleet_and_shows_in_the_snapshot(
    inventory: Inventory,
    nodes: Path,  # noqa: F811
) -> None:
    """A purpose written, a disk grown or a snapshot taken changes no placement: the fleet
    (and with it the placement state built on it) stays the same object, while the records
    and the document show the change."""
    inventory.add_host("host-a", f"test://{nodes / 'host-a.xml'}")
    inventory.sync()
    live = LiveFleet(inventory)
    fleet = live()
    vm = next(v for v in live.snapshot().vms if v.disks)
    inventory.set_metadata(vm.uuid, {"purpose": "read me again"}, actor="t")
    snap = live.snapshot()
    assert snap.fleet is fleet and live.reads == 2
    assert next(v for v in snap.vms if v.uuid == vm.uuid).purpose == "read me again"
    assert next(d for d in snap.document["vms"] if d["uuid"] == vm.uuid)["purpose"] == (
        "read me again"
    )
    with inventory.db.engine.begin() as conn:  # within the clock tick of the last write
        disks = conn.execute(select(m.VM.disks).where(m.VM.uuid == vm.uuid)).scalar_one()
        grown = [{**d, "capacity_bytes": (d.get("capacity_bytes") or 0) + 2**30} for d in disks]
        conn.execute(
            update(m.VM)
            .where(m.VM.uuid == vm.uuid)
            .values(disks=grown, disk_bytes=m.VM.disk_bytes + 2**30 * len(disks))
        )
    snap = live.snapshot()
    assert snap.fleet is fleet and live.reads == 3
    assert next(v for v in snap.vms if v.uuid == vm.uuid).disk_gb == vm.disk_gb + len(
        [d for d in disks if d.get("device") == "disk" and d.get("path")]
    )
    _same(live, inventory)


def test_one_reader_per_inventory_serves_every_caller(inventory: Inventory) -> None:
    """live_fleet, the request service and the dashboard's /ha read through the one reader
    of their inventory: what one of them read, the others do not read again."""
    assert shared_fleet(inventory) is shared_fleet(inventory)
    assert live_fleet(inventory).fleet is shared_fleet(inventory)()
