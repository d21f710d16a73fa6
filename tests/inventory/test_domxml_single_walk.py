"""Issue 15 item 7: the domain reader walks each domain's XML once, and answers as before.

The former reader (one ElementPath ``find`` per field, kept in domxml_reference.py) is the
oracle: on random domain documents — fields missing, repeated, blank, in other namespaces,
several <devices>/<os>/<cpu>/<metadata> elements, metadata given apart as libvirt's
``--config`` element — the new reader returns the same VMFacts, or fails with the same error.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from corral.domain.model import VMState
from corral.errors import ValidationError
from corral.hypervisor import domxml
from tests.inventory import domxml_reference as reference

NS = domxml.METADATA_NS
OTHER_NS = "urn:example:other"

texts = st.sampled_from(["", "  ", "x", " web-01 ", "Finance", "R&D", "2026-05-01", "12", "no"])
numbers = st.sampled_from(["1", " 4 ", "2048", "0", "abc", ""])
units = st.sampled_from([None, "KiB", "MiB", "GiB", "b", "bytes", "kb", "TB", "weird"])
paths = st.sampled_from(["/images/a.qcow2", "/dev/sdb", "pool/vol", "", "rbd/img"])
tags = st.sampled_from(["name", "uuid", "memory", "vcpu", "os", "cpu", "devices", "metadata"])


def _maybe_attr(draw: st.DrawFn, el: etree._Element, name: str, values: Any) -> None:
    value = draw(st.none() | values)
    if value is not None:
        el.set(name, value)


def _text_el(draw: st.DrawFn, parent: etree._Element, tag: str, values: Any) -> etree._Element:
    el = etree.SubElement(parent, tag)
    text = draw(st.none() | values)
    if text is not None:
        el.text = text
    return el


@st.composite
def disk(draw: st.DrawFn, parent: etree._Element) -> None:
    d = etree.SubElement(parent, "disk")
    _maybe_attr(draw, d, "device", st.sampled_from(["disk", "cdrom", "lun"]))
    for _ in range(draw(st.integers(0, 2))):
        src = etree.SubElement(d, "source")
        for attr in ("file", "dev", "volume", "name"):
            _maybe_attr(draw, src, attr, paths)
    if draw(st.booleans()):
        backing = etree.SubElement(d, "backingStore")
        for _ in range(draw(st.integers(0, 2))):
            _maybe_attr(draw, etree.SubElement(backing, "source"), "file", paths)
    for _ in range(draw(st.integers(0, 2))):
        target = etree.SubElement(d, "target")
        _maybe_attr(draw, target, "dev", st.sampled_from(["vda", "sdb", ""]))
        _maybe_attr(draw, target, "bus", st.sampled_from(["virtio", "sata"]))
    if draw(st.booleans()):
        _maybe_attr(draw, etree.SubElement(d, "driver"), "type", st.sampled_from(["qcow2", "raw"]))


@st.composite
def nic(draw: st.DrawFn, parent: etree._Element) -> None:
    n = etree.SubElement(parent, "interface")
    _maybe_attr(draw, n, "type", st.sampled_from(["network", "bridge", "direct"]))
    for _ in range(draw(st.integers(0, 2))):
        mac = etree.SubElement(n, "mac")
        _maybe_attr(draw, mac, "address", st.sampled_from(["52:54:00:AA:bb:01", ""]))
    if draw(st.booleans()):
        src = etree.SubElement(n, "source")
        for attr in ("network", "bridge", "dev"):
            _maybe_attr(draw, src, attr, st.sampled_from(["default", "br0", "eth1", ""]))
    if draw(st.booleans()):
        _maybe_attr(draw, etree.SubElement(n, "model"), "type", st.sampled_from(["virtio"]))


@st.composite
def corral_vm(draw: st.DrawFn, parent: etree._Element | None) -> etree._Element:
    tag = f"{{{NS}}}vm"
    vm = etree.Element(tag, nsmap={"c": NS}) if parent is None else etree.SubElement(parent, tag)
    fields = ["owner", "department", "purpose", "project", "environment", "protection-tier"]
    fields += ["created-by", "expires-on", "created-on", "template", "revision", "tags"]
    for name in draw(st.lists(st.sampled_from(fields), max_size=8)):
        ns = draw(st.sampled_from([NS, NS, OTHER_NS]))
        child = etree.SubElement(vm, f"{{{ns}}}{name}")
        if name == "tags":
            for _ in range(draw(st.integers(0, 3))):
                _text_el(draw, child, f"{{{NS}}}tag", texts)
        elif name == "template":
            child.text = draw(st.sampled_from(["true", "1", "YES", "no", ""]))
        elif name == "revision":
            child.text = draw(numbers)
        else:
            child.text = draw(texts)
    return vm


@st.composite
def domains(draw: st.DrawFn) -> tuple[bytes, bytes | None]:
    root = etree.Element(draw(st.sampled_from(["domain"] * 9 + ["vm"])))
    if draw(st.integers(0, 9)):  # mostly readable: a name and a UUID, wherever they stand
        etree.SubElement(root, "name").text = draw(st.sampled_from(["web", " db-1 "]))
        etree.SubElement(root, "uuid").text = draw(st.sampled_from(["AB-CD", "1234"]))
    for tag in draw(st.lists(tags, max_size=14)):
        if draw(st.integers(0, 9)) == 0:  # the same name in another namespace
            _text_el(draw, root, f"{{{OTHER_NS}}}{tag}", texts)
        elif tag in ("name", "uuid"):
            _text_el(draw, root, tag, texts)
        elif tag == "memory":
            el = _text_el(draw, root, draw(st.sampled_from(["memory", "currentMemory"])), numbers)
            _maybe_attr(draw, el, "unit", units)
        elif tag == "vcpu":
            _maybe_attr(draw, _text_el(draw, root, "vcpu", numbers), "current", numbers)
        elif tag == "os":
            os_el = etree.SubElement(root, "os")
            for _ in range(draw(st.integers(0, 2))):
                type_el = _text_el(draw, os_el, "type", st.sampled_from(["hvm", "xen"]))
                _maybe_attr(draw, type_el, "arch", st.sampled_from(["x86_64", "aarch64"]))
        elif tag == "cpu":
            cpu = etree.SubElement(root, "cpu")
            _maybe_attr(draw, cpu, "mode", st.sampled_from(["host-model", "custom"]))
            for _ in range(draw(st.integers(0, 2))):
                _text_el(draw, cpu, "model", st.sampled_from(["", " Skylake ", "EPYC"]))
        elif tag == "devices":
            devices = etree.SubElement(root, "devices")
            for kind in draw(st.lists(st.sampled_from(["disk", "nic", "other"]), max_size=5)):
                if kind == "other":
                    etree.SubElement(devices, "console")
                else:
                    draw((disk if kind == "disk" else nic)(devices))
        else:
            metadata = etree.SubElement(root, "metadata")
            for _ in range(draw(st.integers(0, 2))):
                draw(corral_vm(metadata))
            if draw(st.booleans()):
                etree.SubElement(metadata, f"{{{OTHER_NS}}}vm").text = "x"
    if draw(st.booleans()):
        root.insert(0, etree.Comment(" a comment "))
    for child in draw(st.permutations(list(root))):
        root.append(child)  # moves it: the children in a drawn order
    config = draw(st.none() | corral_vm(None).map(etree.tostring))
    return etree.tostring(root), config


def _read(module: Any, xml: bytes, config: bytes | None, state: VMState) -> Any:
    try:
        return module.parse_domain(
            xml.decode(),
            state=state,
            autostart=True,
            persistent=False,
            config_metadata=config.decode() if config else None,
        )
    except (ValidationError, ValueError) as exc:  # int() of a bad <vcpu> raises ValueError
        return (type(exc), str(exc))


@settings(max_examples=400, deadline=None)
@given(doc=domains(), state=st.sampled_from(VMState))
def test_single_walk_reads_what_the_find_per_field_reader_read(
    doc: tuple[bytes, bytes | None], state: VMState
) -> None:
    xml, config = doc
    assert _read(domxml, xml, config, state) == _read(reference, xml, config, state)


@pytest.mark.parametrize("config", [None, "<vm xmlns='urn:corral:vm:1'><owner>b</owner></vm>"])
def test_a_libvirt_domain_reads_fully(config: str | None) -> None:
    """A complete document as libvirt writes it: every field is read (a reader returning
    nothing would pass the comparison above only if the oracle did the same)."""
    xml = """<domain type='kvm'><name>web</name><uuid>AB-CD</uuid>
      <metadata><corral:vm xmlns:corral='urn:corral:vm:1'><corral:owner>a</corral:owner>
        <corral:revision>3</corral:revision><corral:tags><corral:tag>x</corral:tag>
        </corral:tags></corral:vm></metadata>
      <memory unit='GiB'>4</memory><currentMemory unit='MiB'>2048</currentMemory>
      <vcpu current='2'>4</vcpu><os><type arch='x86_64'>hvm</type></os>
      <cpu mode='host-model'/><devices>
        <disk device='disk'><driver type='qcow2'/><source file='/i/a.qcow2'/>
          <backingStore><source file='/i/base.qcow2'/></backingStore>
          <target dev='vda' bus='virtio'/></disk>
        <interface type='network'><mac address='52:54:00:AA:00:01'/>
          <source network='default'/><model type='virtio'/></interface>
      </devices></domain>"""
    facts = domxml.parse_domain(xml, state=VMState.running, config_metadata=config)
    assert facts == reference.parse_domain(xml, state=VMState.running, config_metadata=config)
    assert (facts.uuid, facts.name, facts.vcpus, facts.memory_max_mib, facts.memory_mib) == (
        "ab-cd",
        "web",
        2,
        4096,
        2048,
    )
    assert (facts.cpu_model, facts.os_type, facts.arch) == ("host-model", "hvm", "x86_64")
    assert [(d.target, d.path, d.format, d.bus, d.backing_path) for d in facts.disks] == [
        ("vda", "/i/a.qcow2", "qcow2", "virtio", "/i/base.qcow2")
    ]
    assert [(n.mac, n.type, n.source, n.model) for n in facts.nics] == [
        ("52:54:00:aa:00:01", "network", "default", "virtio")
    ]
    assert facts.meta.owner == ("b" if config else "a")
    assert facts.meta_revision == (None if config else 3)
    assert facts.meta.tags == (() if config else ("x",))
