"""A storage volume's XML is read by one walk of its root's children, and answers as before.

The former reader (one ElementPath ``find`` per field, kept below) is the oracle: on random
volume documents (fields missing, repeated, empty, in another namespace, in any order, sizes
in any unit), the new reader returns the same fields. A first sync reads one volume for each
disk of the fleet, so the reader is on its path (benchmarks/bench_inventory_sync.py).
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from corral.hypervisor import domxml
from corral.hypervisor.libvirt.reading import _volume_xml
from corral.hypervisor.xmlsafe import parse

OTHER_NS = "urn:example:other"
texts = st.sampled_from([None, "", "  ", "vm-01.qcow2", "/images/a b.qcow2", "/dev/sdb"])
sizes = st.sampled_from([None, "", "0", "42949672960", " 17 ", "x"])
units = st.sampled_from([None, "bytes", "KiB", "GiB", "tb", "odd"])


def _former(xml: str) -> tuple[Any, ...]:
    """The reader before: a ``find`` per field."""
    root = parse(xml, "storage volume XML")
    fmt = root.find("target/format")
    return (
        root.findtext("name"),
        root.findtext("target/path"),
        domxml.size_in_bytes(root.find("capacity")),
        domxml.size_in_bytes(root.find("allocation")),
        fmt.get("type") if fmt is not None else None,
        root.findtext("backingStore/path"),
    )


def _text(draw: st.DrawFn, parent: etree._Element, tag: str, values: Any) -> etree._Element:
    el = etree.SubElement(parent, tag)
    el.text = draw(values)
    return el


@st.composite
def volumes(draw: st.DrawFn) -> str:
    root = etree.Element("volume", type="file")
    kinds = ["name", "capacity", "allocation", "target", "backingStore", "key", "other"]
    for kind in draw(st.lists(st.sampled_from(kinds), max_size=9)):
        if kind == "other":
            _text(draw, root, f"{{{OTHER_NS}}}name", texts)
        elif kind in ("name", "key"):
            _text(draw, root, kind, texts)
        elif kind in ("capacity", "allocation"):
            unit = draw(units)
            el = _text(draw, root, kind, sizes)
            if unit is not None:
                el.set("unit", unit)
        else:
            holder = etree.SubElement(root, kind)
            for child in draw(st.lists(st.sampled_from(["path", "format", "other"]), max_size=3)):
                if child == "format":
                    fmt = etree.SubElement(holder, "format")
                    if draw(st.booleans()):
                        fmt.set("type", draw(st.sampled_from(["qcow2", "raw", ""])))
                else:
                    _text(draw, holder, "path" if child == "path" else f"{{{OTHER_NS}}}path", texts)
    return etree.tostring(root, encoding="unicode")


@settings(max_examples=400, deadline=None)
@given(xml=volumes())
def test_one_walk_reads_what_a_find_per_field_read(xml: str) -> None:
    assert tuple(_volume_xml(xml)) == _former(xml)


def test_a_libvirt_volume_reads_fully() -> None:
    """A document as libvirt writes it: every field is read (a reader giving nothing would
    pass the comparison only if the former did too)."""
    xml = """<volume type='file'><name>a.qcow2</name><key>/i/a.qcow2</key>
      <capacity unit='bytes'>42949672960</capacity><allocation unit='KiB'>1024</allocation>
      <target><path>/i/a.qcow2</path><format type='qcow2'/></target>
      <backingStore><path>/i/base.qcow2</path><format type='raw'/></backingStore></volume>"""
    assert tuple(_volume_xml(xml)) == (
        "a.qcow2",
        "/i/a.qcow2",
        42949672960,
        1024**2,
        "qcow2",
        "/i/base.qcow2",
    )
    assert tuple(_volume_xml(xml)) == _former(xml)
