"""Backup planning on the live inventory: the tier set on a VM reaches its policy and plan."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from corral.engines.backup import Policy
from corral.inventory.service import Inventory
from corral.services import backup
from corral.services.fleet import live_fleet

NODES = Path(__file__).resolve().parents[1] / "fixtures" / "nodes"
pytestmark = pytest.mark.parametrize("db", ["sqlite"], indirect=True)


def test_a_vms_inventory_tier_decides_its_backup_policy(
    inventory: Inventory, tmp_path: Path
) -> None:
    nodes = tmp_path / "nodes"
    shutil.copytree(NODES, nodes)
    inventory.add_host("host-a", f"test://{nodes / 'host-a.xml'}")
    inventory.sync()
    vms = inventory.list_vms().items
    assert vms
    target = vms[0].name
    inventory.set_metadata(target, {"protection_tier": "backup-only"})
    snapshot = live_fleet(inventory)
    view = {v.vm: v for v in backup.policy_view(Policy(), snapshot).vms}
    assert view[target].tier == "backup-only" and view[target].origin == "tier"
    result = backup.plan(snapshot, Policy())
    planned = {s.vm: s for s in result.plan.scheduled}
    assert planned[target].tier == "backup-only"
    assert planned[target].runs_per_day == 1
    assert planned[target].datastore.startswith("host-a:")  # the folder of its first disk
    assert result.summary.vms == len(snapshot.fleet.vms)
