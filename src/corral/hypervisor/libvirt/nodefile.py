"""Test-driver node-file persistence.

The test driver keeps state per connection and never writes it back, so for
``test:///path`` hosts the writes Corral makes (metadata, power state, snapshots,
autostart, deletions) are also written into the node file; a test-driver host then
behaves like a real one across runs. connect() wraps only test-driver hosts in
NodeFileHypervisor; on a real host the hooks of HypervisorCore do nothing.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import libvirt
from lxml import etree

from corral.errors import NodeFileError, ValidationError
from corral.hypervisor.libvirt.core import _norm
from corral.hypervisor.libvirt.hypervisor import LibvirtHypervisor
from corral.hypervisor.uri import test_file_path
from corral.hypervisor.xmlsafe import parse, refuse_unsafe

TEST_NS = "http://libvirt.org/schemas/domain/test/1.0"
# libvirt's node-file format has no autostart flag: Corral keeps it in its own element,
# which libvirt ignores, and applies it when it opens the file.
CORRAL_TD_NS = "urn:corral:testdriver:1"
_AUTOSTART = f"{{{CORRAL_TD_NS}}}autostart"


def _check_node_file(path: Path, *, whole: bool = True) -> None:
    """Raise NodeFileError (with details, for the log) when the node file cannot be used.

    ``whole=False`` checks only what must hold before libvirt reads the file: that it exists,
    and is of a size and kind Corral reads (no DOCTYPE or entity, which libvirt's parser
    would expand). A file not well-formed, or with another root than <node>, libvirt refuses
    as it parses it, and the whole check then tells why. Parsing every node file here too
    cost as much CPU as a tenth of libvirt's own opening of it.
    """
    if not path.is_file():
        raise NodeFileError(f"node file {path} does not exist.")
    try:
        if not whole:
            refuse_unsafe(path.read_bytes(), f"node file {path}")
            return
        root = parse(path.read_bytes(), f"node file {path}")
    except ValidationError as exc:
        raise NodeFileError(exc.message) from None
    if root.tag != "node":
        raise NodeFileError(f"node file {path} must have <node> as its root element.")


class NodeFileHypervisor(LibvirtHypervisor):
    """A test-driver host (``test:///path``) whose changes are written back to its node file."""

    def __init__(self, uri: str, conn: libvirt.virConnect) -> None:
        super().__init__(uri, conn)
        self._node_file = Path(test_file_path(uri))
        self._restore_autostart(self._node_file)

    def _forget(self, uuid: str, volume_paths: list[str]) -> None:
        """Drop a deleted domain and its deleted volumes from the node file."""
        node = parse(self._node_file.read_bytes(), f"node file {self._node_file}")
        for d in node.iterfind("domain"):
            if (d.findtext("uuid") or "").lower() == uuid.lower():
                node.remove(d)
        gone = {_norm(p) for p in volume_paths}
        for pool in node.iterfind("pool"):
            for vol in pool.iterfind("volume"):
                if _norm(vol.findtext("target/path") or "") in gone:
                    pool.remove(vol)
        _save_node(self._node_file, node)

    def _write_back_volume(self, pool: str, vol: libvirt.virStorageVol) -> None:
        """Record a volume Corral created in its pool's element of the node file."""
        node = parse(self._node_file.read_bytes(), f"node file {self._node_file}")
        holder = next((p for p in node.iterfind("pool") if p.findtext("name") == pool), None)
        if holder is None:
            return  # a pool the node file does not describe: nothing to keep it in
        new = parse(vol.XMLDesc(0), "storage volume XML")
        path = _norm(new.findtext("target/path") or "")
        for old in holder.iterfind("volume"):
            if _norm(old.findtext("target/path") or "") == path:
                holder.remove(old)
        holder.append(new)
        _save_node(self._node_file, node)

    def _write_back_network(self, name: str, xml: str | None) -> None:
        """Record a network Corral defined (``xml``) or removed (None) in the node file."""
        node = parse(self._node_file.read_bytes(), f"node file {self._node_file}")
        for old in node.iterfind("network"):
            if old.findtext("name") == name:
                node.remove(old)
        if xml is not None:
            node.append(parse(xml, "network XML"))
        _save_node(self._node_file, node)

    def _restore_autostart(self, path: Path) -> None:
        """Apply the autostart flags Corral kept in the node file (libvirt's format has none)."""
        data = path.read_bytes()
        if CORRAL_TD_NS.encode() not in data:
            return
        for d in parse(data, f"node file {path}").iterfind("domain"):
            if d.findtext(_AUTOSTART) != "1":
                continue
            with contextlib.suppress(libvirt.libvirtError):
                self._conn.lookupByUUIDString(d.findtext("uuid") or "").setAutostart(1)

    def _write_back(self, dom: libvirt.virDomain) -> None:
        """Persist the domain's new state into the node file (atomic replace)."""
        path = self._node_file
        uuid = dom.UUIDString().lower()
        try:
            new = parse(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE), "domain XML")
        except libvirt.libvirtError as exc:
            if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                raise
            self._forget(uuid, [])  # a transient domain ends when it stops
            return
        node = parse(path.read_bytes(), f"node file {path}")
        old = next(
            (d for d in node.iterfind("domain") if (d.findtext("uuid") or "").lower() == uuid), None
        )
        run = etree.SubElement(new, f"{{{TEST_NS}}}runstate")
        run.text = str(dom.state()[0])
        for snap in dom.listAllSnapshots(0):
            holder = etree.SubElement(new, f"{{{TEST_NS}}}domainsnapshot")
            sroot = parse(snap.getXMLDesc(0), "snapshot XML")
            if sroot.find("active") is None:
                etree.SubElement(sroot, "active").text = "1" if snap.isCurrent(0) else "0"
            for child in sroot:
                holder.append(child)
        if dom.autostart():
            etree.SubElement(new, _AUTOSTART).text = "1"
        if old is not None:
            node.replace(old, new)
        else:
            node.append(new)
        _save_node(path, node)


def _save_node(path: Path, node: etree._Element) -> None:
    """Write a node file whole, by atomic replace: a reader never sees half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".corral-", suffix=".xml")
    with os.fdopen(fd, "wb") as fh:
        fh.write(etree.tostring(node, xml_declaration=False, encoding="utf-8", pretty_print=True))
    os.replace(tmp, path)
