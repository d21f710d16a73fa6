"""The domain XML of a VM Corral creates, built element by element with lxml.

Every value comes from a typed :class:`DomainPlan` and lands in one attribute or text node,
so a name, path or owner can never change the document's structure. Corral's ownership
metadata goes into the definition itself, so the VM is never defined without its owner,
lease and creator.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from corral.domain.model import OwnerMeta
from corral.hypervisor import domxml
from corral.hypervisor.xmlsafe import parse, to_string

DISK_TARGET = "vda"
SEED_TARGET = "vdb"


@dataclass(frozen=True, slots=True)
class DomainPlan:
    """Everything the definition of a new VM says."""

    name: str
    uuid: str
    vcpus: int
    memory_mib: int
    disk_path: str
    meta: OwnerMeta
    disk_format: str = "qcow2"
    seed_path: str | None = None
    seed_readonly: bool = False
    network: str | None = None
    extra_networks: tuple[str, ...] = ()  # one NIC more on each
    domain_type: str = "kvm"
    arch: str = "x86_64"
    machine: str | None = None
    kernel: str | None = None
    initrd: str | None = None
    cmdline: str | None = None


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    element = etree.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = text
    return element


def _os(root: etree._Element, plan: DomainPlan) -> None:
    os_el = _sub(root, "os")
    type_el = _sub(os_el, "type", "hvm", arch=plan.arch)
    if plan.machine:
        type_el.set("machine", plan.machine)
    if plan.kernel:
        _sub(os_el, "kernel", plan.kernel)
        if plan.initrd:
            _sub(os_el, "initrd", plan.initrd)
        if plan.cmdline:
            _sub(os_el, "cmdline", plan.cmdline)
    else:
        _sub(os_el, "boot", dev="hd")


def _disk(
    devices: etree._Element, path: str, fmt: str, target: str, readonly: bool = False
) -> None:
    disk = _sub(devices, "disk", type="file", device="disk")
    _sub(disk, "driver", name="qemu", type=fmt)
    _sub(disk, "source", file=path)
    _sub(disk, "target", dev=target, bus="virtio")
    if readonly:
        _sub(disk, "readonly")


def _devices(root: etree._Element, plan: DomainPlan) -> None:
    devices = _sub(root, "devices")
    _disk(devices, plan.disk_path, plan.disk_format, DISK_TARGET)
    if plan.seed_path:
        # The NoCloud seed as a second virtio disk: cloud-init finds it by its label. Not
        # read-only, so that deleting the VM deletes it with the VM's other volumes; a unit's
        # VM has it read-only (an internal snapshot refuses a writable raw disk).
        _disk(devices, plan.seed_path, "raw", SEED_TARGET, plan.seed_readonly)
    for network in ([plan.network] if plan.network else []) + list(plan.extra_networks):
        nic = _sub(devices, "interface", type="network")
        _sub(nic, "source", network=network)
        _sub(nic, "model", type="virtio")
    serial = _sub(devices, "serial", type="pty")
    _sub(serial, "target", port="0")
    console = _sub(devices, "console", type="pty")
    _sub(console, "target", type="serial", port="0")
    _sub(devices, "memballoon", model="virtio")


def _metadata(root: etree._Element, meta: OwnerMeta) -> None:
    """Corral's <vm> element, in its namespace, as virDomainSetMetadata would write it."""
    bare = parse(domxml.build_metadata(meta), "Corral metadata")
    holder = _sub(root, "metadata")
    ns = domxml.METADATA_NS
    vm = etree.SubElement(
        holder, f"{{{ns}}}{domxml.METADATA_ROOT}", nsmap={domxml.METADATA_PREFIX: ns}
    )
    for child in bare:
        copy = etree.SubElement(vm, f"{{{ns}}}{child.tag}")
        copy.text = child.text
        for grandchild in child:
            etree.SubElement(copy, f"{{{ns}}}{grandchild.tag}").text = grandchild.text


def domain_xml(plan: DomainPlan) -> str:
    root = etree.Element("domain", type=plan.domain_type)
    _sub(root, "name", plan.name)
    _sub(root, "uuid", plan.uuid)
    _metadata(root, plan.meta)
    _sub(root, "memory", str(plan.memory_mib), unit="MiB")
    _sub(root, "currentMemory", str(plan.memory_mib), unit="MiB")
    _sub(root, "vcpu", str(plan.vcpus))
    _os(root, plan)
    features = _sub(root, "features")
    _sub(features, "acpi")
    _sub(features, "apic")
    _sub(root, "clock", offset="utc")
    _sub(root, "on_poweroff", "destroy")
    _sub(root, "on_reboot", "restart")
    _sub(root, "on_crash", "destroy")
    _devices(root, plan)
    return to_string(root)


__all__ = ["DISK_TARGET", "SEED_TARGET", "DomainPlan", "domain_xml"]
