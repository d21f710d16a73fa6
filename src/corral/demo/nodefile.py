"""Write a demo host as it was on a given day as a libvirt test-driver node file (with lxml)."""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

from lxml import etree

from corral.demo.fleet import NETWORKS, DemoFleet, DemoHost, DemoSnapshot, DemoVM
from corral.hypervisor.domxml import METADATA_NS

TEST_NS = "http://libvirt.org/schemas/domain/test/1.0"
RUNNING, PAUSED, SHUTOFF = 1, 3, 5
GIB = 1024**3
MIN_OVERLAY_MIB = 64  # a fresh qcow2 overlay: header, tables and the first writes


def vm_exists(vm: DemoVM, days_ago: int) -> bool:
    return vm.created_days_ago >= days_ago and (
        vm.deleted_days_ago is None or vm.deleted_days_ago < days_ago
    )


def vm_host(vm: DemoVM, days_ago: int) -> int:
    if vm.migrated and days_ago > vm.migrated[0]:
        return vm.migrated[1]
    return vm.host


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    el = etree.SubElement(parent, tag, {k.rstrip("_"): v for k, v in attrs.items()})
    if text is not None:
        el.text = text
    return el


def _epoch(fleet: DemoFleet, days_ago: int, salt: str) -> int:
    minute = int(hashlib.blake2b(salt.encode(), digest_size=2).hexdigest(), 16) % (10 * 60)
    moment = datetime.combine(fleet.today - timedelta(days=days_ago), time(8, 0), tzinfo=UTC)
    return int((moment + timedelta(minutes=minute)).timestamp())


def _volume_path(host: DemoHost, name: str) -> str:
    return f"/var/lib/libvirt/images/{host.name}/{name}"


def _overlay(vm: DemoVM, days_ago: int) -> DemoSnapshot | None:
    """The external snapshot whose overlay is the VM's disk on that day, if there is one."""
    taken = [s for s in vm.snapshots if s.days_ago >= days_ago]
    return taken[-1] if taken and taken[-1].external else None


def _overlay_name(vm: DemoVM, snap: DemoSnapshot) -> str:
    return f"{vm.name}.{snap.name}"  # virsh's own naming: <image stem>.<snapshot name>


def overlay_mib(vm: DemoVM, snap: DemoSnapshot, days_ago: int) -> int:
    """What the overlay holds on that day: the blocks the VM wrote since the snapshot.

    Fresh writes fill it at ``daily_change`` of the disk a day; rewrites of blocks it already
    holds take no room, so it levels off at the VM's working set (1 - e^-t saturation).
    """
    days = snap.days_ago - days_ago
    ceiling = vm.disk_gib * 1024 * snap.working_set
    held = ceiling * (1 - math.exp(-days * snap.daily_change / snap.working_set))
    return int(max(MIN_OVERLAY_MIB, held))


def _metadata(dom: etree._Element, fleet: DemoFleet, vm: DemoVM) -> None:
    md = _sub(dom, "metadata")
    root = etree.SubElement(md, f"{{{METADATA_NS}}}vm", nsmap={"corral": METADATA_NS})

    def put(tag: str, value: str | None) -> None:
        if value:
            etree.SubElement(root, f"{{{METADATA_NS}}}{tag}").text = value

    put("owner", vm.owner)
    put("department", vm.department)
    put("purpose", vm.purpose)
    put("project", vm.project)
    put("environment", vm.environment)
    put("protection-tier", vm.protection_tier)
    put("created-by", vm.owner or "unknown")
    put("created-on", (fleet.today - timedelta(days=vm.created_days_ago)).isoformat())
    put("expires-on", vm.expires_on.isoformat() if vm.expires_on else None)
    put("template", "true" if vm.template else None)
    if vm.tags:
        tags = etree.SubElement(root, f"{{{METADATA_NS}}}tags")
        for t in vm.tags:
            etree.SubElement(tags, f"{{{METADATA_NS}}}tag").text = t


def _domain(
    node: etree._Element, fleet: DemoFleet, host: DemoHost, vm: DemoVM, days_ago: int
) -> None:
    dom = _sub(node, "domain", type_="test")
    _sub(dom, "name", vm.name)
    _sub(dom, "uuid", vm.uuid)
    _metadata(dom, fleet, vm)
    memory = vm.resized[1] if vm.resized and days_ago > vm.resized[0] else vm.memory_mib
    _sub(dom, "memory", str(memory), unit="MiB")
    _sub(dom, "currentMemory", str(memory), unit="MiB")
    _sub(dom, "vcpu", str(vm.vcpus))
    os_el = _sub(dom, "os")
    _sub(os_el, "type", "hvm")
    devices = _sub(dom, "devices")
    _disk(devices, host, vm, days_ago)
    nic = _sub(devices, "interface", type_="network")
    _sub(nic, "mac", address=vm.mac)
    _sub(nic, "source", network=vm.network)
    _sub(nic, "model", type_="virtio")
    off = vm.template or (vm.off_since_days_ago is not None and days_ago <= vm.off_since_days_ago)
    state = SHUTOFF if off else PAUSED if vm.paused else RUNNING
    _sub(dom, f"{{{TEST_NS}}}runstate", str(state))
    for snap in vm.snapshots:
        if snap.days_ago < days_ago:
            continue
        holder = _sub(dom, f"{{{TEST_NS}}}domainsnapshot")
        _sub(holder, "name", snap.name)
        _sub(holder, "description", snap.description)
        _sub(holder, "creationTime", str(_epoch(fleet, snap.days_ago, vm.uuid + snap.name)))
        _sub(holder, "state", "disk-snapshot" if snap.external else "shutoff")
        _sub(holder, "active", "1" if snap is vm.snapshots[-1] else "0")
        _snapshot_disks(holder, host, vm, snap)
        sdom = _sub(holder, "domain", type_="test")
        _sub(sdom, "name", vm.name)
        _sub(sdom, "uuid", vm.uuid)
        _sub(sdom, "memory", str(memory), unit="MiB")
        _sub(sdom, "vcpu", str(vm.vcpus))
        _sub(_sub(sdom, "os"), "type", "hvm")
        then = _sub(_sub(sdom, "devices"), "disk", type_="file", device="disk")
        # Every snapshot before the external one is internal: each was taken on the image.
        _sub(then, "source", file=_volume_path(host, f"{vm.name}.qcow2"))
        _sub(then, "target", dev="vda", bus="virtio")


def _disk(devices: etree._Element, host: DemoHost, vm: DemoVM, days_ago: int) -> None:
    """The VM's disk: its image, or the overlay of its external snapshot backed by the image."""
    disk = _sub(devices, "disk", type_="file", device="disk")
    _sub(disk, "driver", name="qemu", type_="qcow2")
    image = _volume_path(host, f"{vm.name}.qcow2")
    snap = _overlay(vm, days_ago)
    if snap is None:
        _sub(disk, "source", file=image)
    else:
        _sub(disk, "source", file=_volume_path(host, _overlay_name(vm, snap)))
        backing = _sub(disk, "backingStore", type_="file")
        _sub(backing, "format", type_="qcow2")
        _sub(backing, "source", file=image)
    _sub(disk, "target", dev="vda", bus="virtio")


def _snapshot_disks(holder: etree._Element, host: DemoHost, vm: DemoVM, snap: DemoSnapshot) -> None:
    """Taken shut off (no memory state): internal keeps it in the image, external adds a file."""
    _sub(holder, "memory", snapshot="no")
    disk = _sub(_sub(holder, "disks"), "disk", name="vda")
    disk.set("snapshot", "external" if snap.external else "internal")
    if snap.external:
        disk.set("type", "file")
        _sub(disk, "driver", type_="qcow2")
        _sub(disk, "source", file=_volume_path(host, _overlay_name(vm, snap)))


def _overlay_volumes(
    host: DemoHost, vms: list[DemoVM], days_ago: int
) -> list[tuple[str, int, int, str]]:
    """(name, capacity GiB, allocation MiB, backing path) of each external snapshot's overlay."""
    out = []
    for vm in vms:
        snap = _overlay(vm, days_ago)
        if snap is not None:
            image = _volume_path(host, f"{vm.name}.qcow2")
            out.append(
                (_overlay_name(vm, snap), vm.disk_gib, overlay_mib(vm, snap, days_ago), image)
            )
    return out


def _pool(
    node: etree._Element,
    host: DemoHost,
    vms: list[DemoVM],
    left_behind: list[DemoVM],
    days_ago: int,
) -> None:
    pool = _sub(node, "pool", type_="dir")
    _sub(pool, "name", "images")
    _sub(pool, "uuid", str(_stable_uuid(host.name + "/images")))
    tib = max(4, host.memory_mib // (1024 * 64))  # 8 TiB beside 512 GiB of RAM, and so on
    _sub(pool, "capacity", str(tib), unit="TiB")
    _sub(_sub(pool, "target"), "path", f"/var/lib/libvirt/images/{host.name}")
    for path, gib, mib, backing in _pool_volumes(host, vms, left_behind, days_ago):
        _volume(pool, path, gib, mib, backing)


def _pool_volumes(
    host: DemoHost, vms: list[DemoVM], left_behind: list[DemoVM], days_ago: int
) -> list[tuple[str, int, int, str | None]]:
    """(path, capacity GiB, allocation MiB, backing path) of every volume in the host's pool."""
    volumes: list[tuple[str, int, DemoVM | None]] = [
        (f"{v.name}.qcow2", v.disk_gib, v) for v in vms + left_behind
    ]
    volumes += [(name, gib, None) for name, gib in host.orphans]
    out: list[tuple[str, int, int, str | None]] = []
    for name, gib, vm in volumes:
        used = (
            0.2 + (int(hashlib.blake2b(name.encode(), digest_size=1).hexdigest(), 16) / 255) * 0.7
        )
        backing = None  # a linked clone's image is backed by its template's
        if vm is not None and vm.backing:
            backing = f"/var/lib/libvirt/images/templates/{vm.backing}.qcow2"
        out.append((_volume_path(host, name), gib, int(gib * used * 1024), backing))
    for name, gib, mib, image in _overlay_volumes(host, vms, days_ago):
        out.append((_volume_path(host, name), gib, mib, image))
    return out


def pool_allocation_bytes(fleet: DemoFleet, index: int, days_ago: int) -> int:
    """What the volumes of host ``index``'s pool hold ``days_ago`` days before today."""
    here, gone = _vms_of(fleet, index, days_ago)
    volumes = _pool_volumes(fleet.hosts[index], here, gone, days_ago)
    return sum(mib for _, _, mib, _ in volumes) * 2**20


def _vms_of(fleet: DemoFleet, index: int, days_ago: int) -> tuple[list[DemoVM], list[DemoVM]]:
    """The VMs on host ``index`` ``days_ago`` days before today, and those deleted from it
    by then (their disks left behind)."""
    here = [v for v in fleet.vms if vm_exists(v, days_ago) and vm_host(v, days_ago) == index]
    gone = [
        v
        for v in fleet.vms
        if v.deleted_days_ago is not None and v.deleted_days_ago >= days_ago and v.host == index
    ]
    return here, gone


def _volume(
    pool: etree._Element, path: str, gib: int, allocation_mib: int, backing: str | None
) -> None:
    vol = _sub(pool, "volume", type_="file")
    _sub(vol, "name", path.rsplit("/", 1)[-1])
    _sub(vol, "capacity", str(gib), unit="GiB")
    _sub(vol, "allocation", str(allocation_mib), unit="MiB")
    target = _sub(vol, "target")
    _sub(target, "path", path)
    _sub(target, "format", type_="qcow2")
    if backing is not None:
        bs = _sub(vol, "backingStore")
        _sub(bs, "path", backing)
        _sub(bs, "format", type_="qcow2")


def _stable_uuid(text: str) -> str:
    h = hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def node_tree(fleet: DemoFleet, index: int, days_ago: int) -> etree._Element:
    host = fleet.hosts[index]
    node = etree.Element("node", nsmap={"test": TEST_NS})
    cpu = _sub(node, "cpu")
    _sub(cpu, "mhz", str(host.mhz))
    _sub(cpu, "model", host.cpu_model)
    _sub(cpu, "nodes", "1")
    _sub(cpu, "sockets", str(host.sockets))
    _sub(cpu, "cores", str(host.cores))
    _sub(cpu, "threads", str(host.threads))
    _sub(cpu, "active", str(host.sockets * host.cores * host.threads))
    _sub(node, "memory", str(host.memory_mib * 1024))
    for i, net in enumerate(NETWORKS):
        n = _sub(node, "network")
        _sub(n, "name", net)
        _sub(n, "uuid", _stable_uuid(host.name + net))
        _sub(n, "bridge", name=f"virbr{i}")
        if net != "dmz":
            _sub(n, "forward", mode="nat" if net == "default" else "route")
            ip = _sub(n, "ip", address=f"192.168.{120 + i}.1", netmask="255.255.255.0")
            _sub(
                _sub(ip, "dhcp"),
                "range",
                start=f"192.168.{120 + i}.2",
                end=f"192.168.{120 + i}.254",
            )
    here, gone = _vms_of(fleet, index, days_ago)
    for vm in here:
        _domain(node, fleet, host, vm, days_ago)
    _pool(node, host, here, gone, days_ago)
    return node


def write_node_file(path: Path, tree: etree._Element) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".demo-", suffix=".xml")
    with os.fdopen(fd, "wb") as fh:
        fh.write(etree.tostring(tree, pretty_print=True, encoding="utf-8"))
    os.replace(tmp, path)
