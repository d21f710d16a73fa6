"""The reclamation actions against a real libvirtd with real QEMU/TCG guests.

Each test makes its own guests, and its own transient directory storage pool so that disks
are pool volumes libvirt made; the fixtures remove both afterwards. What each action did is
checked through the libvirt API (and qemu-img for the snapshot inside the qcow2 file).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import libvirt
import pytest
from guest import GuestFactory, create_volume

from corral.errors import HypervisorError
from corral.hypervisor.libvirt import LibvirtHypervisor, connect


@pytest.fixture
def hv(realhost_uris: list[str]) -> Iterator[LibvirtHypervisor]:
    conn = connect(realhost_uris[0])
    yield conn
    conn.close()


def _state(dom: Any) -> int:
    return int(dom.state()[0])


def _exists(conn: Any, uuid: str) -> bool:
    return any(d.UUIDString() == uuid for d in conn.listAllDomains(0))


def _internal_snapshots(image: Path) -> str:
    done = subprocess.run(
        ["qemu-img", "snapshot", "-l", "-U", str(image)],
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout


def test_running_guest_honours_acpi(hv: LibvirtHypervisor, guest_factory: GuestFactory) -> None:
    g = guest_factory(0, wait_ready=True)  # ready: its init is watching the power button
    assert hv.power_off(g.uuid, grace_s=25) == "shutdown"  # within the grace, else "forced"
    assert _state(g.dom) == libvirt.VIR_DOMAIN_SHUTOFF
    assert "power button pressed" in g.console_log.read_text(errors="replace")
    assert hv.power_off(g.uuid) == "already-off"


def test_guest_without_power_button_is_forced(
    hv: LibvirtHypervisor, guest_factory: GuestFactory
) -> None:
    deaf = guest_factory(0, acpi=False, wait_ready=True)
    assert hv.power_off(deaf.uuid, grace_s=3) == "forced"
    assert _state(deaf.dom) == libvirt.VIR_DOMAIN_SHUTOFF
    assert "power button pressed" not in deaf.console_log.read_text(errors="replace")


def test_no_grace_and_paused_guests_are_forced(
    hv: LibvirtHypervisor, guest_factory: GuestFactory
) -> None:
    running = guest_factory(0)
    paused = guest_factory(0)
    paused.dom.suspend()
    assert hv.power_off(running.uuid, grace_s=0) == "forced"
    assert hv.power_off(paused.uuid, grace_s=30) == "forced"
    assert _state(running.dom) == _state(paused.dom) == libvirt.VIR_DOMAIN_SHUTOFF


def test_archive_snapshot_on_shut_off_guest_then_restore(
    hv: LibvirtHypervisor, guest_factory: GuestFactory, pool: Any
) -> None:
    """The workflow's archive step: internal qcow2 snapshot while off; restore deletes it."""
    disk = create_volume(pool, "archived.qcow2", size_mib=16)
    g = guest_factory(0, disk=disk)
    assert hv.power_off(g.uuid, grace_s=0) == "forced"
    hv.set_autostart(g.uuid, False)
    assert g.dom.autostart() == 0
    hv.create_snapshot(g.uuid, "corral-archive-42", "reclamation case 42")
    assert g.dom.snapshotListNames(0) == ["corral-archive-42"]
    snap = g.dom.snapshotLookupByName("corral-archive-42", 0)
    assert "<state>shutoff</state>" in snap.getXMLDesc(0)
    assert "corral-archive-42" in _internal_snapshots(disk)
    hv.delete_snapshot(g.uuid, "corral-archive-42")
    assert g.dom.snapshotListNames(0) == []
    assert "corral-archive-42" not in _internal_snapshots(disk)
    hv.start(g.uuid)
    assert _state(g.dom) == libvirt.VIR_DOMAIN_RUNNING


def test_domain_xml_is_the_inactive_definition(
    hv: LibvirtHypervisor, guest_factory: GuestFactory
) -> None:
    g = guest_factory(0)
    xml = hv.domain_xml(g.uuid)
    assert isinstance(xml, bytes)
    assert xml.decode() == g.dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    assert b"<domain type='qemu'>" in xml  # a running domain's live XML has id='N'


def test_delete_vm_removes_domain_and_its_pool_volume(
    hv: LibvirtHypervisor, guest_factory: GuestFactory, pool: Any, libvirt_conns: list[Any]
) -> None:
    disk = create_volume(pool, "doomed.qcow2", size_mib=16)
    g = guest_factory(0, disk=disk)
    hv.create_snapshot(g.uuid, "left-behind")  # its metadata must not block the undefine
    assert hv.delete_vm(g.uuid) == [str(disk)]
    assert not _exists(libvirt_conns[0], g.uuid)
    pool.refresh(0)
    assert "doomed.qcow2" not in pool.listVolumes()
    assert not disk.exists()
    assert hv.delete_vm(g.uuid) is None


def test_delete_refuses_the_base_of_a_linked_clone(
    hv: LibvirtHypervisor, guest_factory: GuestFactory, pool: Any, libvirt_conns: list[Any]
) -> None:
    base = create_volume(pool, "base.qcow2", size_mib=16)
    overlay = create_volume(pool, "clone.qcow2", size_mib=16, backing=base)
    template = guest_factory(0, disk=base, start=False)
    clone = guest_factory(0, disk=overlay, start=False)
    with pytest.raises(HypervisorError, match=clone.name):
        hv.delete_vm(template.uuid)
    assert _exists(libvirt_conns[0], template.uuid) and base.exists()
    assert hv.delete_vm(clone.uuid) == [str(overlay)]
    assert base.exists()
    assert hv.delete_vm(template.uuid) == [str(base)]
    pool.refresh(0)
    assert pool.listVolumes() == []
