"""Write a demo host as it was on a given day as a libvirt test-driver node file (with lxml)."""

from __future__ import annotations

import hashlib
import os
import tempfile
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

from lxml import etree

from corral.demo.fleet import NETWORKS, DemoFleet, DemoHost, DemoVM
from corral.hypervisor.domxml import METADATA_NS

TEST_NS = "http://libvirt.org/schemas/domain/test/1.0"
RUNNING, PAUSED, SHUTOFF = 1, 3, 5
GIB = 1024**3


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
    disk = _sub(devices, "disk", type_="file", device="disk")
    _sub(disk, "driver", name="qemu", type_="qcow2")
    _sub(disk, "source", file=_volume_path(host, f"{vm.name}.qcow2"))
    _sub(disk, "target", dev="vda", bus="virtio")
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
        _sub(holder, "state", "shutoff")
        _sub(holder, "active", "1" if snap is vm.snapshots[-1] else "0")
        sdom = _sub(holder, "domain", type_="test")
        _sub(sdom, "name", vm.name)
        _sub(sdom, "uuid", vm.uuid)
        _sub(sdom, "memory", str(memory), unit="MiB")
        _sub(sdom, "vcpu", str(vm.vcpus))
        _sub(_sub(sdom, "os"), "type", "hvm")


def _pool(
    node: etree._Element, host: DemoHost, vms: list[DemoVM], left_behind: list[DemoVM]
) -> None:
    pool = _sub(node, "pool", type_="dir")
    _sub(pool, "name", "images")
    _sub(pool, "uuid", str(_stable_uuid(host.name + "/images")))
    tib = max(4, host.memory_mib // (1024 * 64))  # 8 TiB beside 512 GiB of RAM, and so on
    _sub(pool, "capacity", str(tib), unit="TiB")
    _sub(_sub(pool, "target"), "path", f"/var/lib/libvirt/images/{host.name}")
    volumes: list[tuple[str, int, DemoVM | None]] = [
        (f"{v.name}.qcow2", v.disk_gib, v) for v in vms + left_behind
    ]
    volumes += [(name, gib, None) for name, gib in host.orphans]
    for name, gib, vm in volumes:
        vol = _sub(pool, "volume", type_="file")
        _sub(vol, "name", name)
        _sub(vol, "capacity", str(gib), unit="GiB")
        used = (
            0.2 + (int(hashlib.blake2b(name.encode(), digest_size=1).hexdigest(), 16) / 255) * 0.7
        )
        _sub(vol, "allocation", str(int(gib * used * 1024)), unit="MiB")
        target = _sub(vol, "target")
        _sub(target, "path", _volume_path(host, name))
        _sub(target, "format", type_="qcow2")
        if vm is not None and vm.backing:
            bs = _sub(vol, "backingStore")
            _sub(bs, "path", f"/var/lib/libvirt/images/templates/{vm.backing}.qcow2")
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
    here = [v for v in fleet.vms if vm_exists(v, days_ago) and vm_host(v, days_ago) == index]
    for vm in here:
        _domain(node, fleet, host, vm, days_ago)
    gone = [
        v
        for v in fleet.vms
        if v.deleted_days_ago is not None and v.deleted_days_ago >= days_ago and v.host == index
    ]
    _pool(node, host, here, gone)
    return node


def write_node_file(path: Path, tree: etree._Element) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".demo-", suffix=".xml")
    with os.fdopen(fd, "wb") as fh:
        fh.write(etree.tostring(tree, pretty_print=True, encoding="utf-8"))
    os.replace(tmp, path)
