"""Sync on libvirt's test driver: first sync, re-sync, changes, migration, tombstones, dead host."""

from __future__ import annotations

from pathlib import Path

from lxml import etree

from corral.inventory.filters import VMFilter
from corral.inventory.service import Inventory
from tests.inventory.conftest import TEST_NS, Clock, domain, edit_node, set_runstate


def _add(inv: Inventory, nodes: Path, *names: str) -> None:
    for n in names:
        inv.add_host(n, f"test://{nodes / (n + '.xml')}")


def _kinds(inv: Inventory, vm: str) -> list[str]:
    return [e.kind for e in inv.find_vm(vm).history]


def test_first_sync_reads_hosts_vms_disks_snapshots_and_metadata(
    inventory: Inventory, nodes: Path
) -> None:
    _add(inventory, nodes, "host-a", "host-b")
    report = inventory.sync()
    assert report.count_of("created") == 4
    hosts = {h.name: h for h in inventory.list_hosts()}
    a = hosts["host-a"]
    assert (a.cpu_model, a.sockets, a.cores_per_socket, a.threads_per_core) == (
        "Skylake-Server",
        2,
        8,
        2,
    )
    assert (a.cpus, a.mhz, a.memory_mib, a.hypervisor_type) == (
        32,
        2400,
        131072,
        "TEST",
    )
    assert a.status == "ok" and a.vms == 3
    db = inventory.find_vm("db-01")
    assert (db.vcpus, db.memory_mib, db.state, db.host) == (
        8,
        16384,
        "running",
        "host-a",
    )
    assert [(d["target"], d["capacity_bytes"]) for d in db.disks] == [
        ("vda", 60 * 2**30),
        ("vdb", 500 * 2**30),
    ]
    assert db.disk_gib == 560.0
    assert [s["name"] for s in db.snapshot_list] == ["before-upgrade"]
    assert db.snapshot_list[0]["created_at"].startswith("2023-11-14T22:13:20")
    web = inventory.find_vm("web-01")
    assert (web.owner, web.department, web.environment) == ("alice", "Finance", "prod")
    assert web.tags == ("prod", "web")
    assert web.created_at.isoformat().startswith("2025-01-15")
    assert web.nics[0]["mac"] == "52:54:00:aa:00:01"
    assert web.history[0].details["discovered"] is True  # there before Corral first looked
    orphans = inventory.list_volumes(orphaned_only=True)
    assert [v.name for v in orphans] == ["forgotten.qcow2"]


def test_unchanged_resync_is_idempotent(inventory: Inventory, nodes: Path, clock: Clock) -> None:
    _add(inventory, nodes, "host-a", "host-b")
    inventory.sync()
    before = inventory.list_vms().items
    clock.advance(hours=1)
    report = inventory.sync()
    assert report.events == {}
    assert all(h.vms_changed == 0 for h in report.hosts)
    assert inventory.list_vms().items == before


def test_changes_become_events(inventory: Inventory, nodes: Path, clock: Clock) -> None:
    _add(inventory, nodes, "host-a")
    inventory.sync()
    path = nodes / "host-a.xml"

    def change(node: etree._Element) -> None:
        set_runstate(node, "web-01", 5)  # stopped
        set_runstate(node, "old-build", 1)  # started
        db = domain(node, "db-01")
        db.find("memory").text = db.find("currentMemory").text = "32768"  # resized
        snap = db.find(f"{{{TEST_NS}}}domainsnapshot")
        snap.getparent().remove(snap)  # snapshot removed

    edit_node(path, change)
    clock.advance(days=1)
    report = inventory.sync()
    assert report.events == {"resized": 1, "snapshot-removed": 1, "started": 1, "stopped": 1}
    assert _kinds(inventory, "web-01")[-1] == "stopped"
    web = inventory.find_vm("web-01")
    assert web.state == "shutoff" and web.state_since == clock.now
    resized = inventory.find_vm("db-01").history[-2]
    assert resized.kind == "resized"
    assert resized.details["memory_mib"] == {"from": 16384, "to": 32768}
    assert inventory.list_vms(VMFilter(off_for_days=0)).total == 1


def test_deleted_vm_becomes_tombstone(inventory: Inventory, nodes: Path, clock: Clock) -> None:
    _add(inventory, nodes, "host-a")
    inventory.sync()
    edit_node(nodes / "host-a.xml", lambda n: n.remove(domain(n, "old-build")))
    clock.advance(days=2)
    report = inventory.sync()
    assert report.events == {"deleted": 1}
    assert inventory.list_vms().total == 2
    tomb = inventory.list_vms(VMFilter(only_deleted=True)).items
    assert [t.name for t in tomb] == ["old-build"]
    assert tomb[0].deleted_at == clock.now
    assert inventory.find_vm("old-build").history[-1].kind == "deleted"
    # its disk is now an orphan
    assert {v.name for v in inventory.list_volumes(orphaned_only=True)} == {
        "forgotten.qcow2",
        "old-build.qcow2",
    }


def test_vm_moving_between_hosts_is_migrated_not_recreated(
    inventory: Inventory, nodes: Path, clock: Clock
) -> None:
    _add(inventory, nodes, "host-a", "host-b")
    inventory.sync()
    uuid = inventory.find_vm("web-01").uuid
    moved: list[etree._Element] = []

    def take(node: etree._Element) -> None:
        d = domain(node, "web-01")
        node.remove(d)
        moved.append(d)

    edit_node(nodes / "host-a.xml", take)
    edit_node(nodes / "host-b.xml", lambda n: n.append(moved[0]))
    clock.advance(minutes=5)
    report = inventory.sync()
    assert report.events == {"migrated": 1}
    vm = inventory.find_vm(uuid)
    assert vm.host == "host-b" and vm.deleted_at is None and vm.owner == "alice"
    assert vm.history[-1].details == {"from": "host-a", "to": "host-b"}
    assert [e.kind for e in vm.history] == ["created", "migrated"]


def test_unreachable_host_keeps_its_vms(
    inventory: Inventory, nodes: Path, clock: Clock, tmp_path: Path
) -> None:
    _add(inventory, nodes, "host-a", "host-b")
    inventory.sync()
    # host-b's daemon goes away: re-point it at a socket nobody listens on
    with inventory.db.session() as s:
        from corral.store import models as m

        host = s.query(m.Host).filter_by(name="host-b").one()
        host.uri = f"qemu+unix:///system?socket={tmp_path}/nobody-here/libvirt-sock"
    clock.advance(hours=1)
    report = inventory.sync()
    status = {h.host: (h.status, h.error) for h in report.hosts}
    assert status["host-a"] == ("ok", None)
    assert status["host-b"][0] == "unreachable"
    assert status["host-b"][1] == "the connection failed."  # no path, no libvirt text
    assert report.events == {"host-unreachable": 1}
    cache = inventory.find_vm("cache-01")
    assert cache.deleted_at is None and cache.state == "running" and cache.host == "host-b"
    assert {h.name: h.status for h in inventory.list_hosts()}["host-b"] == "unreachable"
    # a second failed sync records no second event
    assert inventory.sync().events == {}


def test_incremental_sync_reads_only_changed_domains(inventory: Inventory, nodes: Path) -> None:
    _add(inventory, nodes, "host-a")
    inventory.sync()
    hv = inventory.open_host("host-a")
    with inventory.db.session() as s:
        from corral.store import models as m

        known = {v.uuid: v.fingerprint for v in s.query(m.VM)}
    inv = hv.read_inventory(known)
    hv.close()
    assert inv.vms == () and len(inv.unchanged) == 3


def test_networks_listed_with_the_vms_on_them(inventory: Inventory, nodes: Path) -> None:
    _add(inventory, nodes, "host-a")
    inventory.sync()
    (net,) = inventory.list_networks()
    assert (net.host, net.name, net.vms) == ("host-a", "default", 1)  # web-01's NIC
    assert inventory.list_networks(unused_only=True) == []
    edit_node(nodes / "host-a.xml", lambda n: n.remove(domain(n, "web-01")))
    inventory.sync()
    assert [n.name for n in inventory.list_networks(unused_only=True)] == ["default"]
