"""Inventory sync against real libvirtd daemons with real QEMU/TCG guests (scripts/realhosts.sh).

Two daemons on this machine act as two hypervisor hosts. Each test reasons only about the
guests it started itself: the daemons are shared by the whole test session.
"""

from __future__ import annotations

from typing import Any

import libvirt
import pytest
from guest import GuestFactory, migrate_live, run_virsh

from corral.inventory.service import Inventory


@pytest.fixture
def real_inventory(inventory: Inventory, realhost_uris: list[str]) -> Inventory:
    for i, uri in enumerate(realhost_uris[:2], 1):
        inventory.add_host(f"real-{i}", uri)
    return inventory


def _history(inv: Inventory, uuid: str) -> list[str]:
    return [e.kind for e in inv.find_vm(uuid).history]


def test_sync_sees_real_guests_as_they_are(
    real_inventory: Inventory, guest_factory: GuestFactory
) -> None:
    small = guest_factory(0, vcpus=1, memory_mib=96, disk_mib=32)
    big = guest_factory(0, vcpus=2, memory_mib=128)
    report = real_inventory.sync()
    assert {h.host: h.status for h in report.hosts} == {"real-1": "ok", "real-2": "ok"}
    host = next(h for h in real_inventory.list_hosts() if h.name == "real-1")
    assert host.hypervisor_type == "QEMU" and host.cpus and host.memory_mib > 1024
    s = real_inventory.find_vm(small.uuid)
    b = real_inventory.find_vm(big.uuid)
    assert (s.host, s.state, s.vcpus, s.memory_max_mib) == ("real-1", "running", 1, 96)
    assert (b.host, b.state, b.vcpus, b.memory_max_mib) == ("real-1", "running", 2, 128)
    disks = [d for d in s.disks if d["device"] == "disk"]
    assert len(disks) == 1 and disks[0]["path"] == str(small.disk_path)
    assert disks[0]["format"] == "qcow2" and disks[0]["capacity_bytes"] == 32 * 1024 * 1024
    assert [d for d in b.disks if d["device"] == "disk"] == []
    assert _history(real_inventory, small.uuid) == ["created"]


def test_virsh_stop_start_and_snapshot_become_events(
    real_inventory: Inventory, guest_factory: GuestFactory, realhost_uris: list[str]
) -> None:
    g = guest_factory(0, disk_mib=16)
    uri = realhost_uris[0]
    real_inventory.sync()
    run_virsh(uri, "destroy", g.name)
    real_inventory.sync()
    assert real_inventory.find_vm(g.uuid).state == "shutoff"
    run_virsh(uri, "start", g.name)
    real_inventory.sync()
    run_virsh(uri, "snapshot-create-as", g.name, "corral-test-snap", "--description", "from virsh")
    real_inventory.sync()
    vm = real_inventory.find_vm(g.uuid)
    assert _history(real_inventory, g.uuid) == ["created", "stopped", "started", "snapshot-taken"]
    assert vm.state == "running"
    assert [s["name"] for s in vm.snapshot_list] == ["corral-test-snap"]
    assert vm.history[-1].details == {"snapshot": "corral-test-snap"}
    # nothing changed: a re-sync records nothing
    assert real_inventory.sync().events == {}


def test_live_migration_keeps_identity(
    real_inventory: Inventory,
    guest_factory: GuestFactory,
    libvirt_conns: list[Any],
    realhost_uris: list[str],
) -> None:
    g = guest_factory(0)
    real_inventory.sync()
    migrate_live(g.dom, realhost_uris[1])
    moved = libvirt_conns[1].lookupByUUIDString(g.uuid)
    assert moved.state()[0] == libvirt.VIR_DOMAIN_RUNNING
    report = real_inventory.sync()
    assert report.count_of("migrated") == 1 and report.count_of("deleted") == 0
    vm = real_inventory.find_vm(g.uuid)
    assert (vm.host, vm.state, vm.deleted_at) == ("real-2", "running", None)
    assert _history(real_inventory, g.uuid) == ["created", "migrated"]
    assert vm.history[-1].details == {"from": "real-1", "to": "real-2"}
