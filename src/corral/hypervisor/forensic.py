"""libvirt steps of a forensic snapshot: memory and disks of a running VM, and NIC isolation.

The capture is an external snapshot with memory (notes/backup-ha.md A3, A2): QEMU writes the
guest's RAM to a file and, at the same instant, switches each disk to a new overlay, so the
disk files below hold exactly the state that goes with the memory and are only read by QEMU
from then on. They are copied as they are (plain file copies: byte for byte what the VM had)
and the snapshot is deleted, which on libvirt 9 commits the overlays back and pivots the VM
onto its own disks again (an active block commit of each overlay into the disk below it). So
however many snapshots a VM is given, its backing chain stays as deep as it was: that is
checked after every capture, and a chain that grew is an error that says how to fix it.
The guest keeps running throughout (0.1-1 s on these hosts, against
1.5-1.9 s of stopped guest for ``dom.save``; and a saved domain would have to be restored,
which a suspect VM's owner may not want). Reverting to such a snapshot is not supported by
libvirt 9, and none is kept: the evidence is the files.

Isolation rewires each NIC of the live domain (and of its definition, so a restart stays
isolated) onto a named network with ``updateDeviceFlags``; the MAC and the guest-side device
stay, so the guest sees a link that now leads nowhere.
"""

from __future__ import annotations

import copy
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree

from corral.domain.forensic import DOMAIN_XML, MEMORY, MovedNic
from corral.errors import ConflictError, HypervisorError, NotFoundError
from corral.hypervisor import xmlsafe
from corral.hypervisor.libvirt.connection import quiet_libvirt
from corral.hypervisor.restore import FileDisk, file_disks


@dataclass(frozen=True, slots=True)
class Captured:
    """The files a capture wrote into the evidence folder: (file name, disk target or None)."""

    files: tuple[tuple[str, str | None], ...]


def capture(dom: Any, folder: Path, name: str) -> Captured:
    """Memory, a copy of each file disk and the live definition of ``dom`` into ``folder``."""
    import libvirt

    quiet_libvirt()  # its errors are reported here, as one sentence, not printed by libvirt
    if not dom.isActive():
        raise ConflictError(f"{dom.name()} is not running: a memory snapshot needs a running VM.")
    live = str(dom.XMLDesc(0))
    (folder / DOMAIN_XML).write_text(live, encoding="utf-8")
    disks = file_disks(live)
    overlays = {d.target: d.path.with_name(f".{d.path.name}.{name}") for d in disks}
    xml = snapshot_xml(name, folder / MEMORY, live, overlays)
    flags = libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_LIVE | libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC
    try:
        snap = dom.snapshotCreateXML(xml, flags)
    except libvirt.libvirtError as exc:
        raise HypervisorError(
            f"the host refused the memory snapshot of {dom.name()}: {exc.get_error_message()}"
        ) from None
    try:
        copied = [_copy(d, folder) for d in disks]
    finally:
        _merge_back(dom, snap, overlays)
    _check_chain(dom, chain_depths(live), overlays)
    return Captured(((MEMORY, None), *copied, (DOMAIN_XML, None)))


def chain_depths(live: str) -> dict[str, int]:
    """Disk target -> how many images its backing chain holds (1: no backing file)."""
    root = xmlsafe.parse(live, "domain XML")
    depths = {}
    for disk in root.iterfind("./devices/disk"):
        target = disk.find("target")
        if target is None or not target.get("dev"):
            continue
        depth, store = 1, disk.find("backingStore")
        while store is not None and store.find("source") is not None:
            depth, store = depth + 1, store.find("backingStore")
        depths[str(target.get("dev"))] = depth
    return depths


def _check_chain(dom: Any, before: dict[str, int], overlays: dict[str, Path]) -> None:
    """Each disk's chain as deep as before the capture, and no overlay file left behind."""
    after = chain_depths(str(dom.XMLDesc(0)))
    grown = [f"{t} ({before[t]} -> {after.get(t)})" for t in overlays if after.get(t) != before[t]]
    left = [str(p) for p in overlays.values() if p.exists()]
    if grown or left:
        raise HypervisorError(
            f"the evidence of {dom.name()} was taken, but its backing chain did not shrink back "
            f"(disks {', '.join(grown) or 'none'}; overlays left: {', '.join(left) or 'none'}); "
            "commit them with 'virsh blockcommit --active --pivot' and delete the overlays."
        )


def snapshot_xml(name: str, memory: Path, live: str, overlays: dict[str, Path]) -> str:
    """The snapshot's definition: memory to ``memory``, each file disk to its overlay, every
    other disk (a CD-ROM, a network disk) left out of the snapshot."""
    root = etree.Element("domainsnapshot")
    etree.SubElement(root, "name").text = name
    etree.SubElement(root, "description").text = "corral forensic snapshot"
    etree.SubElement(root, "memory", snapshot="external", file=str(memory))
    disks = etree.SubElement(root, "disks")
    for target in _all_disk_targets(live):
        if target in overlays:
            disk = etree.SubElement(disks, "disk", name=target, snapshot="external")
            etree.SubElement(disk, "driver", type="qcow2")
            etree.SubElement(disk, "source", file=str(overlays[target]))
        else:
            etree.SubElement(disks, "disk", name=target, snapshot="no")
    return etree.tostring(root, encoding="unicode")


def _all_disk_targets(live: str) -> list[str]:
    root = xmlsafe.parse(live, "domain XML")
    return [str(t.get("dev")) for t in root.iterfind("./devices/disk/target") if t.get("dev")]


def _copy(disk: FileDisk, folder: Path) -> tuple[str, str | None]:
    """The disk file as QEMU left it at the snapshot (it only reads it now), byte for byte."""
    name = f"{disk.target}.{disk.fmt}"
    try:
        shutil.copyfile(disk.path, folder / name)
    except OSError as exc:
        raise HypervisorError(f"cannot copy disk {disk.path}: {exc.strerror}") from None
    return name, disk.target


def _merge_back(dom: Any, snap: Any, overlays: dict[str, Path]) -> None:
    """Delete the snapshot: libvirt commits each overlay into its disk and pivots onto it."""
    import libvirt

    try:
        snap.delete(0)
    except libvirt.libvirtError as exc:
        left = ", ".join(str(p) for p in overlays.values())
        raise HypervisorError(
            f"the evidence of {dom.name()} was taken, but merging its disks back failed "
            f"({exc.get_error_message()}); the VM runs on {left}: commit them with "
            "'virsh blockcommit --active --pivot'."
        ) from None


def isolate(dom: Any, network: str) -> tuple[MovedNic, ...]:
    """Move every NIC of the running ``dom`` onto ``network`` (live, and in its definition)."""
    import libvirt

    quiet_libvirt()
    _check_network(dom.connect(), network)
    live = xmlsafe.parse(str(dom.XMLDesc(0)), "domain XML")
    moved = []
    for nic in live.iterfind("./devices/interface"):
        mac = nic.find("mac")
        if mac is None or mac.get("address") is None:
            continue
        source = nic.find("source")
        was = _network_of(nic, source)
        flags = libvirt.VIR_DOMAIN_AFFECT_LIVE
        if dom.isPersistent():
            flags |= libvirt.VIR_DOMAIN_AFFECT_CONFIG
        try:
            dom.updateDeviceFlags(_rewired(nic, network), flags)
        except libvirt.libvirtError as exc:
            raise HypervisorError(
                f"cannot move NIC {mac.get('address')} of {dom.name()} to network {network}: "
                f"{exc.get_error_message()}"
            ) from None
        moved.append(MovedNic(str(mac.get("address")), was))
    _check_moved(dom, network, moved)
    return tuple(moved)


def nic_networks(dom: Any) -> dict[str, str]:
    """MAC -> the network (or bridge, or type) each NIC of the live domain is on."""
    live = xmlsafe.parse(str(dom.XMLDesc(0)), "domain XML")
    out = {}
    for nic in live.iterfind("./devices/interface"):
        mac = nic.find("mac")
        if mac is not None and mac.get("address"):
            out[str(mac.get("address"))] = _network_of(nic, nic.find("source"))
    return out


def _network_of(nic: etree._Element, source: etree._Element | None) -> str:
    if source is not None and source.get("network"):
        return str(source.get("network"))
    if source is not None and source.get("bridge"):
        return f"bridge:{source.get('bridge')}"
    return f"type:{nic.get('type')}"


def _rewired(nic: etree._Element, network: str) -> str:
    """The NIC's element on ``network``: same MAC, model and guest address; the host side
    (bridge, port, tap settings libvirt filled in) is left for libvirt to choose again."""
    new = copy.deepcopy(nic)
    new.set("type", "network")
    for tag in ("source", "portid"):
        for old in new.findall(tag):
            new.remove(old)
    source = etree.Element("source", network=network)
    new.insert(1 if new.find("mac") is not None else 0, source)
    return etree.tostring(new, encoding="unicode")


def _check_network(conn: Any, network: str) -> None:
    import libvirt

    try:
        net = conn.networkLookupByName(network)
    except libvirt.libvirtError:
        raise NotFoundError(
            f"the VM's host has no network named {network!r}; define an isolated network "
            "there first (see docs/forensic.md)."
        ) from None
    if not net.isActive():
        raise ConflictError(f"network {network} is not active on the VM's host; start it first.")


def _check_moved(dom: Any, network: str, moved: list[MovedNic]) -> None:
    now = nic_networks(dom)
    stray = [n.mac for n in moved if now.get(n.mac) != network]
    if stray:
        raise HypervisorError(
            f"NIC(s) {', '.join(stray)} of {dom.name()} are not on {network} after the move."
        )
