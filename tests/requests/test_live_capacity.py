"""A decision places on the live inventory's fleet without reading the whole inventory each
time: the fleet is read again only when a host's capacity or a VM row changed, and a
decision after such a change places on the changed fleet."""

from __future__ import annotations

import shutil
from pathlib import Path

from corral.inventory.service import Inventory
from corral.services.live_capacity import LiveFleet
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
