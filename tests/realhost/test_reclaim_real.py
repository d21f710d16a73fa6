"""The reclamation workflow on real libvirtd hosts with real QEMU/TCG guests and real e-mail.

A running guest is taken through notify → quarantine (ACPI shutdown, autostart
off, marked in its domain metadata) → archive (an internal qcow2 snapshot of
the powered-off disk) → restore, and comes back running with nothing of the
workflow left on it. Another guest, its disk a volume in a libvirt pool, goes
the whole way to deletion: domain and volume are gone.
"""

from __future__ import annotations

from typing import Any

import libvirt
import pytest
from guest import GuestFactory, create_volume
from tests.conftest import Clock
from tests.reclaim.conftest import Inbox, make_service, smtp  # noqa: F401  (fixture)

from corral.engines.reclaim import Policy
from corral.inventory.service import Inventory
from corral.notify.mailer import SmtpSettings

QUICK = Policy(
    notice_days=1, quarantine_days=1, cooling_off_days=1, approvals={}, shutdown_grace_s=60
)


@pytest.fixture
def real_inventory(inventory: Inventory, realhost_uris: list[str]) -> Inventory:
    inventory.add_host("real-1", realhost_uris[0])
    return inventory


def _metadata_tags(dom: Any) -> str:
    try:
        return str(dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, "urn:corral:vm:1", 0))
    except libvirt.libvirtError:
        return ""


def _walk(svc: Any, clock: Clock, days: int = 2) -> None:
    clock.advance(days=days)
    outcomes = svc.run()
    assert all(o.result in ("done", "waiting") for o in outcomes), outcomes


def test_real_guest_quarantined_archived_and_restored(
    real_inventory: Inventory,
    guest_factory: GuestFactory,
    smtp: tuple[Inbox, SmtpSettings],  # noqa: F811
    clock: Clock,
) -> None:
    inbox, settings = smtp
    g = guest_factory(0, disk_mib=16, wait_ready=True)
    g.dom.setAutostart(1)
    real_inventory.sync()
    real_inventory.set_metadata(g.uuid, {"owner": "carol", "tags": ["batch"]})
    svc = make_service(real_inventory, settings, QUICK)
    case = svc.flag(g.name, category="idle", reason="idle for 30 days", actor="ops")

    svc.run()
    assert inbox.for_case(case.id, "notify")[0]["To"] == "carol@example.test"
    _walk(svc, clock)  # quarantine: a real ACPI shutdown
    assert g.dom.isActive() == 0 and g.dom.autostart() == 0
    assert "reclaim:quarantined" in _metadata_tags(g.dom)
    assert real_inventory.find_vm(g.uuid).state == "shutoff"

    _walk(svc, clock)  # archive: an internal snapshot of the powered-off qcow2 disk
    snapshot = f"corral-archive-{case.id}"
    assert g.dom.snapshotListNames(0) == [snapshot]
    assert svc.case(case.id).state == "archived"

    svc.restore(case.id, "ops")
    assert g.dom.isActive() == 1 and g.dom.autostart() == 1
    assert g.dom.snapshotListNames(0) == []
    assert "reclaim:" not in _metadata_tags(g.dom)
    assert "batch" in _metadata_tags(g.dom)
    vm = real_inventory.find_vm(g.uuid)
    assert vm.state == "running" and vm.tags == ("batch",)
    kinds = [e.kind for e in vm.history]
    for kind in ("reclaim-flagged", "reclaim-notified", "quarantined", "archived", "restored"):
        assert kind in kinds
    assert inbox.for_case(case.id, "restore")


def test_real_guest_deleted_with_its_pool_volume(
    real_inventory: Inventory,
    guest_factory: GuestFactory,
    pool: Any,
    smtp: tuple[Inbox, SmtpSettings],  # noqa: F811
    clock: Clock,
) -> None:
    _, settings = smtp
    disk = create_volume(pool, "doomed.qcow2", size_mib=16)
    g = guest_factory(0, disk=disk, wait_ready=True)
    real_inventory.sync()
    real_inventory.set_metadata(g.uuid, {"owner": "dave@example.test"})
    svc = make_service(real_inventory, settings, QUICK)
    case = svc.flag(g.name, category="powered_off", reason="unused", actor="ops")
    svc.run()
    for _ in range(3):
        _walk(svc, clock)
    done = svc.case(case.id)
    assert done.state == "deleted" and done.deleted_volumes == (str(disk),)
    conn = g.dom.connect()
    with pytest.raises(libvirt.libvirtError):
        conn.lookupByUUIDString(g.uuid)
    pool.refresh(0)
    assert "doomed.qcow2" not in pool.listVolumes()
    assert not disk.exists()
    assert real_inventory.find_vm(g.uuid).deleted_at is not None
