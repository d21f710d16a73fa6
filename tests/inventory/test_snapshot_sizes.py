"""Snapshot sizes on libvirt's test driver: external snapshots are sized from their overlay
volumes, internal ones stay unknown, and the snapshot-sprawl detector prices what is known.

The test driver refuses to *take* an external snapshot, but loads one from a node file, which
is how these tests give a host a snapshot chain: disk ``vda`` of ``ext-vm`` is the overlay
``ext-vm.s2`` on ``ext-vm.s1`` on ``ext-vm.qcow2``, each a volume of the pool ``images``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from lxml import etree

from corral.demo.nodefile import overlay_mib
from corral.demo.run import build_demo
from corral.engines.costing import load_cost_model
from corral.engines.sprawl.analysis import analyse
from corral.engines.sprawl.detectors.snapshot_sprawl import SnapshotSprawlDetector
from corral.engines.sprawl.model import Finding
from corral.hypervisor.domxml import parse_snapshot
from corral.hypervisor.libvirt import LibvirtHypervisor, connect
from corral.inventory.service import Inventory
from corral.services.records import fleet_records
from tests.conftest import Clock
from tests.inventory.conftest import TEST_NS, edit_node

MIB = 1024**2
GIB = 1024**3
IMG = "/var/lib/libvirt/images/snap-host"
EXT_UUID = "5a000000-0000-4000-8000-000000000001"
INT_UUID = "5a000000-0000-4000-8000-000000000002"
LOST_UUID = "5a000000-0000-4000-8000-000000000003"
BIG_UUID = "5a000000-0000-4000-8000-000000000004"
# Allocation of each pool volume (MiB): base images, then the overlays snapshots created.
ALLOC_MIB = {
    "ext-vm.qcow2": 5000,
    "ext-vm.s1": 700,
    "ext-vm.s2": 300,
    "int-vm.qcow2": 4000,
    "lost-vm.qcow2": 2000,
    "big-vm.qcow2": 8000,
    "big-vm.s1": 150 * 1024,
}


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    el = etree.SubElement(parent, tag, attrs)
    if text is not None:
        el.text = text
    return el


def _domain_body(dom: etree._Element, name: str, uuid: str) -> None:
    _sub(dom, "name", name)
    _sub(dom, "uuid", uuid)
    _sub(dom, "memory", "1024", unit="MiB")
    _sub(dom, "vcpu", "1")
    _sub(_sub(dom, "os"), "type", "hvm")


def _disk(devices: etree._Element, chain: list[str]) -> None:
    """A qcow2 disk whose source is chain[0], backed by the rest of the chain in order."""
    disk = _sub(devices, "disk", type="file", device="disk")
    _sub(disk, "driver", name="qemu", type="qcow2")
    _sub(disk, "source", file=f"{IMG}/{chain[0]}")
    holder = disk
    for file in chain[1:]:
        holder = _sub(holder, "backingStore", type="file")
        _sub(holder, "format", type="qcow2")
        _sub(holder, "source", file=f"{IMG}/{file}")
    _sub(disk, "target", dev="vda", bus="virtio")


def _snapshot(
    dom: etree._Element,
    name: str,
    created: datetime,
    *,
    was: str,
    overlay: str | None,
    parent: str | None = None,
    current: bool = False,
) -> None:
    """An external disk-only snapshot when ``overlay`` is given, else an internal one; ``was``
    is the VM's disk when it was taken (the image an external snapshot freezes)."""
    holder = _sub(dom, f"{{{TEST_NS}}}domainsnapshot")
    _sub(holder, "name", name)
    _sub(holder, "creationTime", str(int(created.timestamp())))
    _sub(holder, "state", "disk-snapshot" if overlay else "shutoff")
    _sub(holder, "active", "1" if current else "0")
    if parent:
        _sub(_sub(holder, "parent"), "name", parent)
    _sub(holder, "memory", snapshot="no")  # taken shut off: no memory state
    disk = _sub(_sub(holder, "disks"), "disk", name="vda")
    disk.set("snapshot", "external" if overlay else "internal")
    if overlay:
        _sub(disk, "source", file=f"{IMG}/{overlay}")
    then = _sub(holder, "domain", type="test")
    _domain_body(then, dom.findtext("name") or "", dom.findtext("uuid") or "")
    _disk(_sub(then, "devices"), [was])


def _vm(node: etree._Element, name: str, uuid: str, chain: list[str]) -> etree._Element:
    dom = _sub(node, "domain", type="test")
    _domain_body(dom, name, uuid)
    _disk(_sub(dom, "devices"), chain)
    _sub(dom, f"{{{TEST_NS}}}runstate", "5")
    return dom


def _pool(node: etree._Element) -> None:
    pool = _sub(node, "pool", type="dir")
    _sub(pool, "name", "images")
    _sub(pool, "uuid", "5b000000-0000-4000-8000-000000000001")
    _sub(pool, "capacity", "4", unit="TiB")
    _sub(_sub(pool, "target"), "path", IMG)
    for name, mib in ALLOC_MIB.items():
        vol = _sub(pool, "volume", type="file")
        _sub(vol, "name", name)
        _sub(vol, "capacity", "200", unit="GiB")
        _sub(vol, "allocation", str(mib), unit="MiB")
        target = _sub(vol, "target")
        _sub(target, "path", f"{IMG}/{name}")
        _sub(target, "format", type="qcow2")


def snapshot_node(now: datetime) -> etree._Element:
    """One host: a VM with a two-snapshot external chain, one with an internal snapshot, one
    whose overlay no pool holds, and one whose single overlay has grown to 150 GiB."""
    node = etree.Element("node", nsmap={"test": TEST_NS})
    cpu = _sub(node, "cpu")
    for tag, value in (("mhz", "2400"), ("nodes", "1"), ("sockets", "1"), ("cores", "8")):
        _sub(cpu, tag, value)
    _sub(cpu, "threads", "1")
    _sub(cpu, "active", "8")
    _sub(node, "memory", str(64 * 1024 * 1024))
    ext = _vm(node, "ext-vm", EXT_UUID, ["ext-vm.s2", "ext-vm.s1", "ext-vm.qcow2"])
    _snapshot(ext, "s1", now - timedelta(days=60), was="ext-vm.qcow2", overlay="ext-vm.s1")
    _snapshot(
        ext,
        "s2",
        now - timedelta(days=2),
        was="ext-vm.s1",
        overlay="ext-vm.s2",
        parent="s1",
        current=True,
    )
    internal = _vm(node, "int-vm", INT_UUID, ["int-vm.qcow2"])
    _snapshot(
        internal,
        "before-patch",
        now - timedelta(days=30),
        was="int-vm.qcow2",
        overlay=None,
        current=True,
    )
    lost = _vm(node, "lost-vm", LOST_UUID, ["lost-vm.gone", "lost-vm.qcow2"])
    _snapshot(
        lost,
        "s1",
        now - timedelta(days=1),
        was="lost-vm.qcow2",
        overlay="lost-vm.gone",
        current=True,
    )
    big = _vm(node, "big-vm", BIG_UUID, ["big-vm.s1", "big-vm.qcow2"])
    _snapshot(
        big, "s1", now - timedelta(days=1), was="big-vm.qcow2", overlay="big-vm.s1", current=True
    )
    _pool(node)
    return node


@pytest.fixture
def snap_host(tmp_path: Path, clock: Clock) -> Path:
    path = tmp_path / "snap-host.xml"
    path.write_bytes(etree.tostring(snapshot_node(clock.now), pretty_print=True))
    return path


@pytest.fixture
def snap_inventory(inventory: Inventory, snap_host: Path) -> Inventory:
    inventory.add_host("snap-host", f"test://{snap_host}")
    inventory.sync()
    return inventory


@pytest.fixture
def hv(snap_host: Path) -> Iterator[LibvirtHypervisor]:
    conn = connect(f"test://{snap_host}")
    yield conn
    conn.close()


def _snaps(inv: Inventory, vm: str) -> dict[str, dict[str, object]]:
    return {s["name"]: s for s in inv.find_vm(vm).snapshot_list}


# -- parsing ------------------------------------------------------------------------------------


def test_parse_external_disk_only_snapshot_names_its_overlay() -> None:
    xml = (
        "<domainsnapshot><name>s</name><creationTime>1700000000</creationTime>"
        "<state>disk-snapshot</state><memory snapshot='no'/><disks>"
        "<disk name='vda' snapshot='external' type='file'><source file='/p/a.s'/></disk>"
        "<disk name='vdb' snapshot='external' type='block'><source dev='/dev/vg/b.s'/></disk>"
        "<disk name='hdc' snapshot='no'/></disks><domain type='kvm'><devices>"
        "<disk device='disk'><source file='/p/a.qcow2'/><target dev='vda'/></disk>"
        "<disk device='disk'><source dev='/dev/vg/b'/><target dev='vdb'/></disk>"
        "<disk device='cdrom'><source file='/iso/x.iso'/><target dev='hdc'/></disk>"
        "</devices></domain></domainsnapshot>"
    )
    snap = parse_snapshot(xml)
    assert (snap.kind, snap.files, snap.size_bytes) == ("external", ("/p/a.s", "/dev/vg/b.s"), None)
    assert snap.frozen == ("/p/a.qcow2", "/dev/vg/b")  # the images it made read-only


def test_parse_external_snapshot_with_memory_counts_the_memory_file() -> None:
    xml = (
        "<domainsnapshot><name>s</name><creationTime>1700000000</creationTime>"
        "<memory snapshot='external' file='/p/mem.save'/><disks>"
        "<disk name='vda' snapshot='external'><source file='/p/a.s'/></disk></disks>"
        "</domainsnapshot>"
    )
    assert parse_snapshot(xml).files == ("/p/a.s", "/p/mem.save")


def test_parse_internal_snapshot_has_no_files_and_no_size() -> None:
    xml = (
        "<domainsnapshot><name>s</name><creationTime>1700000000</creationTime>"
        "<memory snapshot='internal'/><disks><disk name='vda' snapshot='internal'/></disks>"
        "</domainsnapshot>"
    )
    snap = parse_snapshot(xml)
    assert (snap.kind, snap.files, snap.size_bytes) == ("internal", (), None)


def test_parse_snapshot_that_does_not_say_its_kind() -> None:
    xml = "<domainsnapshot><name>s</name><creationTime>1700000000</creationTime></domainsnapshot>"
    assert parse_snapshot(xml).kind is None


# -- sync ---------------------------------------------------------------------------------------


def test_external_snapshots_get_their_overlay_allocation(snap_inventory: Inventory) -> None:
    snaps = _snaps(snap_inventory, "ext-vm")
    assert snaps["s1"]["kind"] == snaps["s2"]["kind"] == "external"
    assert snaps["s1"]["files"] == [f"{IMG}/ext-vm.s1"]
    assert snaps["s1"]["frozen"] == [f"{IMG}/ext-vm.qcow2"]
    assert snaps["s2"]["frozen"] == [f"{IMG}/ext-vm.s1"]
    assert snaps["s1"]["size_bytes"] == 700 * MIB
    assert snaps["s2"]["size_bytes"] == 300 * MIB
    assert _snaps(snap_inventory, "big-vm")["s1"]["size_bytes"] == 150 * GIB


def test_internal_snapshot_size_stays_unknown(snap_inventory: Inventory) -> None:
    snap = _snaps(snap_inventory, "int-vm")["before-patch"]
    assert (snap["kind"], snap["files"], snap["frozen"]) == ("internal", [], [])
    assert snap["size_bytes"] is None


def test_overlay_in_no_pool_leaves_the_size_unknown(snap_inventory: Inventory) -> None:
    snap = _snaps(snap_inventory, "lost-vm")["s1"]
    assert (snap["kind"], snap["size_bytes"]) == ("external", None)


def test_one_unknown_overlay_leaves_the_whole_snapshot_unknown(
    inventory: Inventory, snap_host: Path
) -> None:
    """big-vm gains a second disk whose overlay no pool holds: 150 GiB would be a guess."""

    def second_disk(node: etree._Element) -> None:
        big = next(d for d in node.iterfind("domain") if d.findtext("name") == "big-vm")
        devices = big.find("devices")
        disks = big.find(f"{{{TEST_NS}}}domainsnapshot/disks")
        assert devices is not None and disks is not None
        vdb = _sub(devices, "disk", type="file", device="disk")
        _sub(vdb, "source", file="/elsewhere/big-vm-data.s1")
        _sub(vdb, "target", dev="vdb", bus="virtio")
        extra = _sub(disks, "disk", name="vdb", snapshot="external")
        _sub(extra, "source", file="/elsewhere/big-vm-data.s1")

    edit_node(snap_host, second_disk)
    inventory.add_host("snap-host", f"test://{snap_host}")
    inventory.sync()
    snap = _snaps(inventory, "big-vm")["s1"]
    assert snap["files"] == [f"{IMG}/big-vm.s1", "/elsewhere/big-vm-data.s1"]
    assert snap["size_bytes"] is None


def test_overlay_growth_reaches_the_store_on_the_next_sync(
    snap_inventory: Inventory, snap_host: Path, clock: Clock
) -> None:
    """The domain XML does not change when the active overlay grows; the size must follow."""

    def grow(node: etree._Element) -> None:
        for vol in node.iterfind("pool/volume"):
            if vol.findtext("name") == "ext-vm.s2":
                alloc = vol.find("allocation")
                assert alloc is not None
                alloc.text = "2500"

    edit_node(snap_host, grow)
    clock.advance(hours=1)
    report = snap_inventory.sync()
    assert report.events == {}  # a bigger overlay is no event in the VM's history
    snaps = _snaps(snap_inventory, "ext-vm")
    assert (snaps["s1"]["size_bytes"], snaps["s2"]["size_bytes"]) == (700 * MIB, 2500 * MIB)


def test_node_file_write_back_keeps_external_snapshots(hv: LibvirtHypervisor) -> None:
    """Corral's own (internal) snapshot rewrites the node file; the external chain survives."""
    hv.create_snapshot(EXT_UUID, "corral-made", "taken by Corral")
    hv.close()
    again = connect(hv.uri)
    try:
        vm = again.read_vm(EXT_UUID)
    finally:
        again.close()
    assert vm is not None
    sizes = {s.name: (s.kind, s.size_bytes) for s in vm.snapshots}
    assert sizes == {
        "s1": ("external", 700 * MIB),
        "s2": ("external", 300 * MIB),
        "corral-made": ("internal", None),
    }


# -- pricing ------------------------------------------------------------------------------------


def _snapshot_findings(inv: Inventory) -> dict[str, Finding]:
    vms, hosts, volumes = fleet_records(inv)
    analysis = analyse(
        vms,
        inv.clock(),
        load_cost_model(),
        hosts=hosts,
        volumes=volumes,
        detectors=[SnapshotSprawlDetector()],
    )
    return {f.subject_name: f for f in analysis.findings}


def test_snapshot_sprawl_prices_the_known_sizes(snap_inventory: Inventory) -> None:
    price = load_cost_model().storage.snapshot_price_per_gb_month
    found = _snapshot_findings(snap_inventory)
    # ext-vm: only s1 (60 days) is older than 14 days; it holds its 700 MiB overlay.
    ext = found["ext-vm"]
    assert ext.monthly_cost_held == pytest.approx(700 / 1024 * price)
    assert ext.evidence.measures["older_than_limit"] == 1
    assert ext.evidence.measures["total_gb"] == round(1000 / 1024, 2)
    assert ext.confidence == 1.0
    # big-vm: one day old and alone, but 150 GiB is over the 100 GB limit: "too large".
    big = found["big-vm"]
    assert big.monthly_cost_held == pytest.approx(150 * price)
    assert big.evidence.measures["older_than_limit"] == 0
    # int-vm: too old, but an internal snapshot's size is unknown: no money invented.
    internal = found["int-vm"]
    assert internal.monthly_cost_held == 0.0
    assert internal.evidence.measures["sizes_unknown"] == 1
    assert internal.confidence == 0.0
    assert "lost-vm" not in found  # young, alone, size unknown: undecided, not a finding


# -- the demo -----------------------------------------------------------------------------------


def test_demo_external_snapshots_are_sized_and_priced(inventory: Inventory, tmp_path: Path) -> None:
    """The demo's newest snapshots are mostly external: each overlay is a pool volume of the size
    the demo gave it, neither the overlay nor the frozen image is taken for an orphan, and the
    snapshot-sprawl detector holds real money instead of $0."""
    today = date(2026, 6, 1)
    demo = build_demo(inventory, tmp_path / "demo", n_vms=60, n_hosts=2, today=today)
    live = [vm for vm in demo.fleet.vms if vm.deleted_days_ago is None and vm.snapshots]
    overlays = {vm.uuid: (vm, vm.snapshots[-1]) for vm in live if vm.snapshots[-1].external}
    assert len(overlays) >= 3
    for uuid, (vm, snap) in overlays.items():
        stored = _snaps(inventory, uuid)[snap.name]
        assert stored["kind"] == "external"
        assert stored["size_bytes"] == overlay_mib(vm, snap, 0) * MIB
        assert stored["frozen"] == [stored["files"][0].rsplit(".", 1)[0] + ".qcow2"]
        assert all(
            s["kind"] == "internal" for n, s in _snaps(inventory, uuid).items() if n != snap.name
        )
    orphans = {v.name for v in inventory.list_volumes(orphaned_only=True)}
    left_behind = {name for h in demo.fleet.hosts for name, _gib in h.orphans}
    left_behind |= {f"{v.name}.qcow2" for v in demo.fleet.vms if v.deleted_days_ago is not None}
    assert orphans == left_behind
    found = _snapshot_findings(inventory)
    assert sum(f.monthly_cost_held for f in found.values()) > 0
