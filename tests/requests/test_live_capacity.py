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
from corral.services.fleet import live_fleet
from corral.services.live_capacity import LiveFleet
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


def _same(fleet: Fleet, expected: Fleet) -> None:
    assert fleet.hosts == expected.hosts  # the same hosts, in the same (name) order
    assert sorted(fleet.vms, key=lambda v: v.name) == sorted(expected.vms, key=lambda v: v.name)


def test_the_column_read_gives_the_fleet_the_inventory_document_gives(
    inventory: Inventory,
    nodes: Path,  # noqa: F811
) -> None:
    """Every rule of live_fleet: hosts never synced left out, VMs without sizes left out,
    a name seen twice made unique, paused VMs holding their host, the protection tier; and
    after one VM changed, only its host's VMs are read again."""
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
    first = live()
    _same(first, live_fleet(inventory).fleet)
    assert "never-synced" not in {h.name for h in first.hosts}
    assert {v.name for v in first.vms} >= {f"web-01#{web}", f"web-01#{cache}"}
    assert next(v for v in first.vms if v.name == "db-01").running  # paused holds its host
    assert live.reads == 1 and live.hosts_read == 3

    inventory.set_metadata(web, {"protection_tier": "replicated"}, actor="t")
    changed = live()
    _same(changed, live_fleet(inventory).fleet)
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
    renamed = live()  # a rename ends the name seen twice: both VMs are named again
    _same(renamed, live_fleet(inventory).fleet)
    assert {"web-01", "cache-01"} <= {v.name for v in renamed.vms}
