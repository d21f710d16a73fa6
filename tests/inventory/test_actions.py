"""The reclamation actions of the libvirt adapter on test-driver node files.

Each action is checked three ways: what it returns, what libvirt says afterwards, and what the
node file holds afterwards (a test-driver host is its node file: a later connection, or a sync,
sees only what was written back).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest
from lxml import etree

from corral.errors import HypervisorError, NotFoundError
from corral.hypervisor.libvirt import CORRAL_TD_NS, LibvirtHypervisor, connect
from corral.hypervisor.xmlsafe import parse
from corral.inventory.service import Inventory
from tests.inventory.conftest import TEST_NS, domain, edit_node, set_runstate

WEB = "0a000000-0000-4000-8000-000000000001"
DB = "0a000000-0000-4000-8000-000000000002"
OLD = "0a000000-0000-4000-8000-000000000003"
UNKNOWN = "0a000000-0000-4000-8000-0000000000ff"
IMAGES = "/var/lib/libvirt/images/a"
RUNNING, PAUSED, SHUTOFF = "1", "3", "5"


@pytest.fixture
def host_a(nodes: Path) -> Path:
    return nodes / "host-a.xml"


@pytest.fixture
def hv(host_a: Path) -> Iterator[LibvirtHypervisor]:
    conn = connect(f"test://{host_a}")
    yield conn
    conn.close()


def _node(path: Path) -> etree._Element:
    return parse(path.read_bytes(), f"node file {path}")


def _runstate(path: Path, name: str) -> str | None:
    return domain(_node(path), name).findtext(f"{{{TEST_NS}}}runstate")


def _domain_names(path: Path) -> list[str]:
    return [d.findtext("name") or "" for d in _node(path).iterfind("domain")]


def _volume_paths(path: Path) -> list[str]:
    return [v.findtext("target/path") or "" for v in _node(path).iterfind("pool/volume")]


def _stamp(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


def _file_disk(dom: etree._Element, path: str, target: str, device: str = "disk") -> None:
    devices = dom.find("devices")
    if devices is None:
        devices = etree.SubElement(dom, "devices")
    disk = etree.SubElement(devices, "disk", type="file", device=device)
    etree.SubElement(disk, "source", file=path)
    etree.SubElement(disk, "target", dev=target, bus="virtio")


def _add_domain(node: etree._Element, name: str, uuid: str, *disks: str) -> etree._Element:
    dom = etree.SubElement(node, "domain", type="test")
    etree.SubElement(dom, "name").text = name
    etree.SubElement(dom, "uuid").text = uuid
    etree.SubElement(dom, "memory", unit="MiB").text = "512"
    etree.SubElement(etree.SubElement(dom, "os"), "type").text = "hvm"
    for i, path in enumerate(disks):
        _file_disk(dom, path, f"vd{'abcdefgh'[i]}")
    etree.SubElement(dom, f"{{{TEST_NS}}}runstate").text = SHUTOFF
    node.remove(dom)
    last = node.findall("domain")[-1]
    last.addnext(dom)  # domains before networks and pools, as in the fixtures
    return dom


def _add_volume(node: etree._Element, name: str, backing: str | None = None) -> str:
    pool = node.find("pool")
    assert pool is not None
    vol = etree.SubElement(pool, "volume", type="file")
    etree.SubElement(vol, "name").text = name
    etree.SubElement(vol, "capacity", unit="GiB").text = "10"
    target = etree.SubElement(vol, "target")
    etree.SubElement(target, "path").text = f"{IMAGES}/{name}"
    etree.SubElement(target, "format", type="qcow2")
    if backing is not None:
        store = etree.SubElement(vol, "backingStore")
        etree.SubElement(store, "path").text = backing
        etree.SubElement(store, "format", type="qcow2")
    return f"{IMAGES}/{name}"


# -- power_off ------------------------------------------------------------------------------
def test_power_off_running_vm_shuts_down_and_is_idempotent(
    hv: LibvirtHypervisor, host_a: Path
) -> None:
    assert hv.power_off(WEB, grace_s=5) == "shutdown"
    assert _runstate(host_a, "web-01") == SHUTOFF
    facts = hv.read_vm(WEB)
    assert facts is not None and facts.state.value == "shutoff"
    before = _stamp(host_a)
    assert hv.power_off(WEB) == "already-off"
    assert _stamp(host_a) == before  # nothing written the second time


def test_power_off_already_off_vm_does_nothing(hv: LibvirtHypervisor, host_a: Path) -> None:
    before = _stamp(host_a)
    assert hv.power_off(OLD) == "already-off"
    assert _stamp(host_a) == before


def test_paused_vm_is_forced_off(host_a: Path) -> None:
    edit_node(host_a, lambda n: set_runstate(n, "web-01", int(PAUSED)))
    hv = connect(f"test://{host_a}")
    try:
        assert hv.power_off(WEB, grace_s=30) == "forced"
    finally:
        hv.close()
    assert _runstate(host_a, "web-01") == SHUTOFF


def test_no_grace_means_forced(hv: LibvirtHypervisor, host_a: Path) -> None:
    assert hv.power_off(DB, grace_s=0) == "forced"
    assert _runstate(host_a, "db-01") == SHUTOFF


def test_transient_vm_powered_off_leaves_the_node_file(host_a: Path) -> None:
    def make_transient(node: etree._Element) -> None:
        etree.SubElement(domain(node, "web-01"), f"{{{TEST_NS}}}transient")

    edit_node(host_a, make_transient)
    hv = connect(f"test://{host_a}")
    try:
        assert hv.power_off(WEB) == "shutdown"
        assert hv.read_vm(WEB) is None
    finally:
        hv.close()
    assert "web-01" not in _domain_names(host_a)


# -- set_autostart --------------------------------------------------------------------------
def test_set_autostart_persists_in_node_file_and_is_idempotent(
    hv: LibvirtHypervisor, host_a: Path
) -> None:
    flag = f"{{{CORRAL_TD_NS}}}autostart"
    hv.set_autostart(OLD, True)
    assert domain(_node(host_a), "old-build").findtext(flag) == "1"
    before = _stamp(host_a)
    hv.set_autostart(OLD, True)
    assert _stamp(host_a) == before  # unchanged: no write
    again = connect(f"test://{host_a}")  # a new connection re-reads the node file
    try:
        facts = again.read_vm(OLD)
        assert facts is not None and facts.autostart is True
        again.set_autostart(OLD, False)
    finally:
        again.close()
    assert domain(_node(host_a), "old-build").find(flag) is None
    reread = connect(f"test://{host_a}")
    try:
        facts = reread.read_vm(OLD)
        assert facts is not None and facts.autostart is False
    finally:
        reread.close()


# -- domain_xml -----------------------------------------------------------------------------
def test_domain_xml_is_the_persistent_definition_as_bytes(hv: LibvirtHypervisor) -> None:
    xml = hv.domain_xml(WEB)
    assert isinstance(xml, bytes)
    root = parse(xml, "archived definition")
    assert root.tag == "domain" and root.get("id") is None  # inactive: no run-time id
    assert (root.findtext("name"), root.findtext("uuid")) == ("web-01", WEB)
    source = root.find("devices/disk/source")
    assert source is not None and source.get("file") == f"{IMAGES}/web-01.qcow2"
    owner = root.find("metadata/{urn:corral:vm:1}vm/{urn:corral:vm:1}owner")
    assert owner is not None and owner.text == "alice"


def test_archived_definition_redefines_the_vm(hv: LibvirtHypervisor, host_a: Path) -> None:
    """What domain_xml returns is enough to bring a deleted VM's definition back."""
    xml = hv.domain_xml(OLD)
    assert hv.delete_vm(OLD, delete_storage=False) == []
    conn = libvirt.open(f"test://{host_a}")
    try:
        back = conn.defineXML(xml.decode())
        assert back.UUIDString() == OLD and back.name() == "old-build"
    finally:
        conn.close()


# -- delete_vm ------------------------------------------------------------------------------
def test_delete_running_vm_removes_domain_and_its_volumes(
    hv: LibvirtHypervisor, host_a: Path
) -> None:
    assert hv.delete_vm(DB) == [f"{IMAGES}/db-01.qcow2", f"{IMAGES}/db-01-data.img"]
    assert hv.read_vm(DB) is None
    assert "db-01" not in _domain_names(host_a)  # snapshots and all
    assert _volume_paths(host_a) == [
        f"{IMAGES}/web-01.qcow2",
        f"{IMAGES}/old-build.qcow2",
        f"{IMAGES}/forgotten.qcow2",
    ]
    before = _stamp(host_a)
    assert hv.delete_vm(DB) is None  # idempotent: gone is gone
    assert _stamp(host_a) == before


def test_delete_without_storage_keeps_volumes(hv: LibvirtHypervisor, host_a: Path) -> None:
    volumes = _volume_paths(host_a)
    assert hv.delete_vm(WEB, delete_storage=False) == []
    assert "web-01" not in _domain_names(host_a)
    assert _volume_paths(host_a) == volumes


def test_disks_outside_pools_and_cdroms_are_left_alone(host_a: Path) -> None:
    def change(node: etree._Element) -> None:
        iso = _add_volume(node, "installer.iso")
        old = domain(node, "old-build")
        _file_disk(old, "/srv/elsewhere/scratch.qcow2", "vdb")
        _file_disk(old, iso, "hdc", device="cdrom")

    edit_node(host_a, change)
    hv = connect(f"test://{host_a}")
    try:
        assert hv.delete_vm(OLD) == [f"{IMAGES}/old-build.qcow2"]
    finally:
        hv.close()
    assert f"{IMAGES}/installer.iso" in _volume_paths(host_a)


def test_refuses_to_delete_the_base_of_a_linked_clone(host_a: Path) -> None:
    clone_uuid = "0a000000-0000-4000-8000-0000000000c1"

    def change(node: etree._Element) -> None:
        clone = _add_volume(node, "clone-01.qcow2", backing=f"{IMAGES}/old-build.qcow2")
        _add_domain(node, "clone-01", clone_uuid, clone)

    edit_node(host_a, change)
    hv = connect(f"test://{host_a}")
    try:
        before = _stamp(host_a)
        with pytest.raises(HypervisorError, match=r"clone-01 .* linked clone"):
            hv.delete_vm(OLD)
        assert _stamp(host_a) == before  # nothing deleted at all
        assert hv.read_vm(OLD) is not None
        # the clone itself goes, and only its own overlay: the base is not its disk
        assert hv.delete_vm(clone_uuid) == [f"{IMAGES}/clone-01.qcow2"]
        assert hv.delete_vm(OLD) == [f"{IMAGES}/old-build.qcow2"]
    finally:
        hv.close()


def test_refuses_a_volume_another_vm_uses(host_a: Path) -> None:
    """A disk attached to two VMs, and a backing file named only in a domain's XML."""

    def change(node: etree._Element) -> None:
        _add_domain(
            node, "reader", "0a000000-0000-4000-8000-0000000000c2", f"{IMAGES}/db-01-data.img"
        )
        top = _add_domain(node, "overlay", "0a000000-0000-4000-8000-0000000000c3", "/srv/top.qcow2")
        disk = top.find("devices/disk")
        assert disk is not None
        store = etree.SubElement(disk, "backingStore", type="file")
        etree.SubElement(store, "format", type="qcow2")
        etree.SubElement(store, "source", file=f"{IMAGES}/web-01.qcow2")

    edit_node(host_a, change)
    hv = connect(f"test://{host_a}")
    try:
        before = _stamp(host_a)
        with pytest.raises(HypervisorError, match="reader"):
            hv.delete_vm(DB)
        with pytest.raises(HypervisorError, match="overlay"):
            hv.delete_vm(WEB)
        assert _stamp(host_a) == before
        assert hv.read_vm(DB) is not None and hv.read_vm(WEB) is not None
    finally:
        hv.close()


def test_unknown_vm(hv: LibvirtHypervisor, host_a: Path) -> None:
    before = _stamp(host_a)
    for act in (
        lambda: hv.power_off(UNKNOWN),
        lambda: hv.set_autostart(UNKNOWN, False),
        lambda: hv.domain_xml(UNKNOWN),
    ):
        with pytest.raises(NotFoundError, match=UNKNOWN):
            act()
    assert hv.delete_vm(UNKNOWN) is None
    assert _stamp(host_a) == before


# -- the archive step and a sync afterwards -------------------------------------------------
def test_snapshot_taken_while_off_then_deleted(hv: LibvirtHypervisor, host_a: Path) -> None:
    assert hv.power_off(WEB) == "shutdown"
    hv.create_snapshot(WEB, "corral-archive-7", "archived by reclamation case 7")
    snaps = domain(_node(host_a), "web-01").iterfind(f"{{{TEST_NS}}}domainsnapshot")
    assert [s.findtext("name") for s in snaps] == ["corral-archive-7"]
    hv.delete_snapshot(WEB, "corral-archive-7")
    assert domain(_node(host_a), "web-01").find(f"{{{TEST_NS}}}domainsnapshot") is None
    assert hv.power_off(WEB) == "already-off"


def test_sync_after_actions_sees_vm_stopped_then_deleted_and_volumes_gone(
    inventory: Inventory, host_a: Path
) -> None:
    uri = f"test://{host_a}"
    inventory.add_host("host-a", uri)
    inventory.sync()
    hv = connect(uri)
    try:
        assert hv.power_off(WEB) == "shutdown"
        inventory.sync()
        assert inventory.find_vm(WEB).state == "shutoff"
        assert hv.delete_vm(WEB) == [f"{IMAGES}/web-01.qcow2"]
    finally:
        hv.close()
    report = inventory.sync()
    assert report.count_of("deleted") == 1
    vm = inventory.find_vm(WEB)
    assert vm.deleted_at is not None
    assert [e.kind for e in vm.history][-2:] == ["stopped", "deleted"]
    paths = [v.path for v in inventory.list_volumes()]
    assert f"{IMAGES}/web-01.qcow2" not in paths and f"{IMAGES}/db-01.qcow2" in paths
