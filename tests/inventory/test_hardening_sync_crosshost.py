"""Issue 9 item 8 on libvirt's test driver: storage shared by two hosts, bridge-mode networks,
renames, sizes in bytes.

Two node files describe two hosts that both define a directory pool at /srv/corral-shared (as
hosts mounting one NFS export at one path would): the pool's volumes are one storage.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from lxml import etree

from corral.inventory.service import Inventory
from tests.freshdb import migrated_home
from tests.inventory.conftest import TEST_NS, domain, edit_node

SHARED = "/srv/corral-shared"
MIB = 1024**2
CPU = (("mhz", "2000"), ("model", "X"), ("nodes", "1"), ("sockets", "1"), ("cores", "4"),
       ("threads", "1"), ("active", "4"))  # fmt: skip
VOLUMES = {  # name -> (capacity MiB, backing file)
    "base.qcow2": (2048, None),
    "clone.qcow2": (2048, "base.qcow2"),
    "data-y.qcow2": (1024, None),
    "forgotten.qcow2": (40, None),
}


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    el = etree.SubElement(parent, tag, attrs)
    if text is not None:
        el.text = text
    return el


def _domain(node: etree._Element, name: str, uuid: str, disk: str | None, nic: str | None) -> None:
    d = _sub(node, "domain", type="test")
    _sub(d, "name", name)
    _sub(d, "uuid", uuid)
    _sub(d, "memory", "512", unit="MiB")
    _sub(d, "vcpu", "1")
    _sub(_sub(d, "os"), "type", "hvm")
    devices = _sub(d, "devices")
    if disk:
        el = _sub(devices, "disk", type="file", device="disk")
        _sub(el, "driver", name="qemu", type="qcow2")
        _sub(el, "source", file=f"{SHARED}/{disk}")
        _sub(el, "target", dev="vda", bus="virtio")
    if nic:  # a NIC on a bridge-mode network, as libvirt shows it while the VM runs
        el = _sub(devices, "interface", type="bridge")
        _sub(el, "mac", address="52:54:00:00:00:31")
        _sub(el, "source", network=nic, bridge="br-lan")
    _sub(d, f"{{{TEST_NS}}}runstate", "1")


def _node(path: Path, domains: list[tuple[str, str, str | None, str | None]]) -> Path:
    node = etree.Element("node", nsmap={"test": TEST_NS})
    cpu = _sub(node, "cpu")
    for tag, value in CPU:
        _sub(cpu, tag, value)
    _sub(node, "memory", str(16 * 1024 * 1024))
    for args in domains:
        _domain(node, *args)
    for name, mode, bridge in (("lan", "bridge", "br-lan"), ("spare", None, "virbr9")):
        net = _sub(node, "network")
        _sub(net, "name", name)
        _sub(net, "bridge", name=bridge)
        if mode:
            _sub(net, "forward", mode=mode)
    pool = _sub(node, "pool", type="dir")
    _sub(pool, "name", "shared")
    _sub(pool, "capacity", "1", unit="TiB")
    _sub(_sub(pool, "target"), "path", SHARED)
    for name, (mib, backing) in VOLUMES.items():
        vol = _sub(pool, "volume", type="file")
        _sub(vol, "name", name)
        _sub(vol, "capacity", str(mib), unit="MiB")
        _sub(vol, "allocation", str(mib // 4), unit="MiB")
        target = _sub(vol, "target")
        _sub(target, "path", f"{SHARED}/{name}")
        _sub(target, "format", type="qcow2")
        if backing:
            store = _sub(vol, "backingStore")
            _sub(store, "path", f"{SHARED}/{backing}")
            _sub(store, "format", type="qcow2")
    path.write_bytes(etree.tostring(node, pretty_print=True))
    return path


CLONE_UUID = "c1000000-0000-4000-8000-000000000001"
USER_Y_UUID = "c1000000-0000-4000-8000-000000000002"


@pytest.fixture
def two_hosts(inventory: Inventory, tmp_path: Path) -> tuple[Inventory, Path, Path]:
    x = _node(tmp_path / "host-x.xml", [("clone-vm", CLONE_UUID, "clone.qcow2", "lan")])
    y = _node(tmp_path / "host-y.xml", [("user-y", USER_Y_UUID, "data-y.qcow2", None)])
    inventory.add_host("host-x", f"test://{x}")
    inventory.add_host("host-y", f"test://{y}")
    report = inventory.sync()
    assert [h.status for h in report.hosts] == ["ok", "ok"], report.hosts
    return inventory, x, y


def test_a_shared_pool_is_one_storage_judged_against_every_host(
    two_hosts: tuple[Inventory, Path, Path],
) -> None:
    inv, _, _ = two_hosts
    volumes = {v.name: v for v in inv.list_volumes()}
    assert sorted(v.path for v in inv.list_volumes()) == sorted(
        f"{SHARED}/{n}" for n in VOLUMES
    )  # each once, not once per host
    assert all(v.hosts == ("host-x", "host-y") and v.shared for v in volumes.values())
    # used from host-y only, yet not an orphan when host-x's pool lists it
    assert volumes["data-y.qcow2"].used_by == USER_Y_UUID
    assert volumes["data-y.qcow2"].used_by_host == "host-y"
    # the base of a linked clone is in use through the clone's backing chain
    assert volumes["base.qcow2"].used_by == CLONE_UUID
    assert [v.name for v in inv.list_volumes(orphaned_only=True)] == ["forgotten.qcow2"]


def test_after_a_migration_the_volume_follows_its_vm(
    two_hosts: tuple[Inventory, Path, Path],
) -> None:
    inv, x, y = two_hosts
    moved = domain(etree.parse(str(y)).getroot(), "user-y")
    edit_node(y, lambda n: n.remove(domain(n, "user-y")))
    edit_node(x, lambda n: n.append(moved))
    inv.sync()
    assert inv.find_vm(USER_Y_UUID).host == "host-x"
    data = next(v for v in inv.list_volumes() if v.name == "data-y.qcow2")
    assert (data.used_by, data.used_by_host) == (USER_Y_UUID, "host-x")
    assert [v.name for v in inv.list_volumes(orphaned_only=True)] == ["forgotten.qcow2"]
    # and once the VM is gone from every host, its volume is an orphan
    edit_node(x, lambda n: n.remove(domain(n, "user-y")))
    inv.sync()
    orphans = {v.name for v in inv.list_volumes(orphaned_only=True)}
    assert orphans == {"forgotten.qcow2", "data-y.qcow2"}


def test_a_volume_whose_user_lost_its_host_is_judged_again_on_the_next_change(
    two_hosts: tuple[Inventory, Path, Path],
) -> None:
    """A round whose changes move no file skips the volumes' attribution, unless a stored
    user no longer lives on a host: here its host was removed (its VM kept, unplaced)."""
    inv, x, _ = two_hosts
    inv.remove_host("host-y")
    edit_node(x, lambda n: domain(n, "clone-vm").find("vcpu").__setattr__("text", "2"))
    report = inv.sync(["host-x"])
    assert report.count_of("resized") == 1, report.events
    orphans = {v.name for v in inv.list_volumes(orphaned_only=True)}
    assert orphans == {"forgotten.qcow2", "data-y.qcow2"}
    assert {v.name: v.used_by for v in inv.list_volumes()}["base.qcow2"] == CLONE_UUID


def test_the_deletion_guard_sees_a_backing_file_used_from_another_host(
    two_hosts: tuple[Inventory, Path, Path],
) -> None:
    inv, _, _ = two_hosts
    used = inv.storage_users_elsewhere(
        "host-y", USER_Y_UUID, [f"{SHARED}/base.qcow2", f"{SHARED}/forgotten.qcow2"]
    )
    assert used == {f"{SHARED}/base.qcow2": ["clone-vm on host-x"]}


def test_a_nic_on_a_bridge_mode_network_counts_toward_it(
    two_hosts: tuple[Inventory, Path, Path],
) -> None:
    inv, _, _ = two_hosts
    lan = next(n for n in inv.list_networks() if (n.host, n.name) == ("host-x", "lan"))
    assert lan.forward_mode == "bridge" and lan.vms == 1
    unused = {(n.host, n.name) for n in inv.list_networks(unused_only=True)}
    assert ("host-x", "lan") not in unused
    assert ("host-x", "spare") in unused and ("host-y", "lan") in unused


def test_a_rename_is_an_event_and_the_history_keeps_the_old_name(
    two_hosts: tuple[Inventory, Path, Path],
) -> None:
    inv, x, _ = two_hosts
    edit_node(x, lambda n: setattr(domain(n, "clone-vm").find("name"), "text", "clone-new"))
    inv.sync()
    vm = inv.find_vm(CLONE_UUID)
    assert vm.name == "clone-new"
    renamed = [e for e in vm.history if e.kind == "renamed"]
    assert [e.details for e in renamed] == [{"from": "clone-vm", "to": "clone-new"}]
    assert next(e for e in vm.history if e.kind == "created").vm_name == "clone-vm"


def test_json_gives_sizes_in_bytes(two_hosts: tuple[Inventory, Path, Path], tmp_path: Path) -> None:
    inv, x, _ = two_hosts
    forgotten = next(v for v in inv.list_volumes() if v.name == "forgotten.qcow2")
    assert forgotten.capacity_bytes == 40 * MIB and forgotten.allocation_bytes == 10 * MIB
    assert inv.find_vm(USER_Y_UUID).disk_bytes == 1024 * MIB
    home = migrated_home(tmp_path / "home")
    env = {**os.environ, "CORRAL_HOME": str(home), "CORRAL_NODE_DIR": str(tmp_path)}
    env.pop("CORRAL_DATABASE_URL", None)

    def corral(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "corral", *args], env=env, capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    corral("hosts", "add", "host-x", f"test://{x}")
    corral("sync")
    rows = {v["name"]: v for v in json.loads(corral("volumes", "-o", "json"))}
    assert rows["forgotten.qcow2"]["capacity_bytes"] == 40 * MIB
    assert "capacity_gib" not in rows["forgotten.qcow2"]
    assert "40.0 MiB" in corral("volumes", "--orphaned")
