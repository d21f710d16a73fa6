"""The unit steps over libvirt: isolated networks and pristine internal snapshots.

Why internal snapshots: libvirt 9 cannot revert to an external snapshot ("not supported
yet", notes/backup-ha.md), while an internal one lives inside the VM's qcow2 overlay and
reverts in about two seconds. It is taken while the VM is shut off (right after it was made,
before its first boot), of its disks only. The cloud-init seed is a raw volume, which holds
no snapshot: a unit's VM has it read-only (the guest only reads it), and libvirt leaves a
read-only disk out of the snapshot (on libvirt 9 a writable raw disk makes it refuse, and a
snapshot naming only some disks is refused as well).

A network with no ``<forward>`` and no ``<ip>`` is a bare bridge: the unit's guests reach
each other and nothing else (not even the host).
"""

from __future__ import annotations

import libvirt
from lxml import etree

from corral.hypervisor.libvirt.core import HypervisorCore, _is_active
from corral.hypervisor.units import PRISTINE
from corral.hypervisor.xmlsafe import to_string


def isolated_network_xml(name: str) -> str:
    root = etree.Element("network")
    etree.SubElement(root, "name").text = name
    etree.SubElement(root, "bridge", stp="on", delay="0")
    return to_string(root)


def pristine_snapshot_xml() -> str:
    """An internal snapshot of a shut-off VM: its disks only (its read-only seed is left out
    by libvirt itself)."""
    root = etree.Element("domainsnapshot")
    etree.SubElement(root, "name").text = PRISTINE
    etree.SubElement(root, "description").text = "corral: the unit's state right after deploy"
    etree.SubElement(root, "memory", snapshot="no")
    return to_string(root)


class Units(HypervisorCore):
    """The :class:`corral.hypervisor.units.UnitHost` steps of a libvirt host."""

    def ensure_isolated_network(self, name: str) -> bool:
        with self._lock:
            try:
                net = self._network(name)
                created = net is None
                if net is None:
                    net = self._conn.networkDefineXML(isolated_network_xml(name))
                if not net.isActive():
                    net.create()
                net.setAutostart(1)
            except libvirt.libvirtError as exc:
                raise self._error(f"create network {name}", exc) from None
            self._write_back_network(name, net.XMLDesc(0))
            return created

    def remove_network(self, name: str) -> bool:
        with self._lock:
            try:
                net = self._network(name)
                if net is None:
                    return False
                if net.isActive():
                    net.destroy()
                net.undefine()
            except libvirt.libvirtError as exc:
                raise self._error(f"remove network {name}", exc) from None
            self._write_back_network(name, None)
            return True

    def network_names(self) -> set[str]:
        with self._lock:
            try:
                return {n.name() for n in self._conn.listAllNetworks(0)}
            except libvirt.libvirtError as exc:
                raise self._error("list networks", exc) from None

    def take_pristine(self, uuid: str) -> bool:
        with self._lock:
            dom = self._lookup(uuid)
            try:
                if PRISTINE in dom.snapshotListNames(0):
                    return False
                if _is_active(dom):
                    dom.destroy()
                dom.snapshotCreateXML(pristine_snapshot_xml(), 0)
            except libvirt.libvirtError as exc:
                raise self._error(f"take the pristine snapshot of VM {uuid}", exc) from None
            self._write_back(dom)
            return True

    def revert_pristine(self, uuid: str) -> None:
        with self._lock:
            dom = self._lookup(uuid)
            try:
                snap = dom.snapshotLookupByName(PRISTINE, 0)
                if _is_active(dom):
                    dom.destroy()
                dom.revertToSnapshot(snap, 0)
            except libvirt.libvirtError as exc:
                raise self._error(f"revert VM {uuid} to its pristine state", exc) from None
            self._write_back(dom)

    def _network(self, name: str) -> libvirt.virNetwork | None:
        try:
            return self._conn.networkLookupByName(name)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_NETWORK:
                return None
            raise

    def _write_back_network(self, name: str, xml: str | None) -> None:
        """Nothing to do on a real host; the node-file wrapper records the network."""


__all__ = ["Units", "isolated_network_xml", "pristine_snapshot_xml"]
