"""Issue 15 item 7: the single-walk domain reader on real libvirtd domain XML.

Every domain on the real hosts (running QEMU guests, with all the devices libvirtd adds, and
their persistent definitions) is read by the new reader and by the former one-find-per-field
reader (tests/inventory/domxml_reference.py): both must answer the same VMFacts.
"""

from __future__ import annotations

from typing import Any

import libvirt
from guest import GuestFactory
from tests.inventory import domxml_reference as reference

from corral.domain.model import VMState
from corral.hypervisor import domxml


def _xmls(conn: Any) -> list[str]:
    """Live and persistent XML of every domain; one another session removes meanwhile is
    left out."""
    out = []
    for dom in conn.listAllDomains(0):
        for flags in (0, libvirt.VIR_DOMAIN_XML_INACTIVE):
            try:
                out.append(dom.XMLDesc(flags))
            except libvirt.libvirtError as exc:
                if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                    raise
    return out


def test_real_domains_read_as_the_former_reader_read_them(
    guest_factory: GuestFactory, libvirt_conns: list[Any]
) -> None:
    guest = guest_factory(0, vcpus=2, memory_mib=128, disk_mib=32)
    xmls = [x for conn in libvirt_conns for x in _xmls(conn)]
    read = [domxml.parse_domain(x, state=VMState.running) for x in xmls]
    assert read == [reference.parse_domain(x, state=VMState.running) for x in xmls]
    mine = [f for f in read if f.uuid == guest.uuid]
    assert mine and all((f.vcpus, f.memory_max_mib) == (2, 128) for f in mine)
    # The comparison above covers devices too: real guests carry disks.
    assert any(d.path for f in read for d in f.disks)
