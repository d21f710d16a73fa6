"""How deep each disk's backing chain is, read from a live domain XML as libvirt writes it:
what the forensic capture compares before and after, so a chain that grew is caught."""

from __future__ import annotations

from lxml import etree

from corral.hypervisor.forensic import chain_depths


def _domain(*disks: tuple[str, list[str]]) -> str:
    root = etree.Element("domain", type="qemu")
    devices = etree.SubElement(root, "devices")
    for target, files in disks:
        disk = etree.SubElement(devices, "disk", type="file", device="disk")
        etree.SubElement(disk, "source", file=files[0])
        parent = disk
        for backing in files[1:]:
            store = etree.SubElement(parent, "backingStore", type="file")
            etree.SubElement(store, "format", type="qcow2")
            etree.SubElement(store, "source", file=backing)
            parent = store
        etree.SubElement(parent, "backingStore")  # libvirt ends a chain with an empty one
        etree.SubElement(disk, "target", dev=target, bus="virtio")
    return etree.tostring(root, encoding="unicode")


def test_depth_counts_every_image_of_each_chain() -> None:
    xml = _domain(("vda", ["/top.qcow2", "/mid.qcow2", "/base.qcow2"]), ("vdb", ["/data.qcow2"]))
    assert chain_depths(xml) == {"vda": 3, "vdb": 1}


def test_an_overlay_left_on_top_shows_as_a_deeper_chain() -> None:
    before = chain_depths(_domain(("vda", ["/top.qcow2", "/base.qcow2"])))
    after = chain_depths(_domain(("vda", ["/.top.qcow2.snap", "/top.qcow2", "/base.qcow2"])))
    assert (before, after) == ({"vda": 2}, {"vda": 3})
