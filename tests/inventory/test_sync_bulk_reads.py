"""Issue 15 item 7: the faster first sync reads and stores exactly what the slower one did.

A host is read with a few host-wide libvirt calls (every domain's state, autostart,
persistence, whether it has snapshots) instead of four calls per domain; hosts are read
concurrently and each host's rows are built by the thread that read it. These tests hold
the fast paths to the plain ones on random test-driver fleets: the host-wide answers give
the same facts and fingerprints as asking each domain, a concurrent sync of every host
stores what syncing the hosts one at a time stores, and one dead host among twenty leaves
the other nineteen synced.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import libvirt
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from corral.hypervisor.libvirt.connection import NODE_FILE_FAILED, connect
from corral.hypervisor.libvirt.nodefile import CORRAL_TD_NS, NodeFileHypervisor
from corral.hypervisor.libvirt.reading import _LiveValues
from corral.hypervisor.uri import HostAccess
from corral.inventory.service import Inventory
from corral.security.secrets import SecretBox
from corral.store.db import Database
from tests.inventory.conftest import Clock
from tests.inventory.test_bulk_sync_properties import (
    VM,
    Host,
    _empty,
    _stored,
    _write_node,
    fleets,
)

SETTINGS = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class _PerDomain(NodeFileHypervisor):
    """The reader as it is on a driver that refuses the host-wide calls: each domain asked."""

    def _live_values(self) -> _LiveValues | None:
        return None


def _with_autostart(path: Path, uuids: set[str]) -> None:
    """Mark domains autostart the way Corral keeps it in a node file (libvirt's has none)."""
    tree = etree.parse(str(path))
    for d in tree.getroot().iterfind("domain"):
        if d.findtext("uuid") in uuids:
            etree.SubElement(d, f"{{{CORRAL_TD_NS}}}autostart").text = "1"
    tree.write(str(path))


_TRANSIENT = """<domain type='test'><name>transient-{n}</name>
<uuid>00000000-0000-4000-8000-00000000000{n}</uuid><memory unit='MiB'>256</memory>
<vcpu>1</vcpu><os><type>hvm</type></os></domain>"""


@SETTINGS
@given(hosts=fleets(), autostart=st.sets(st.integers(0, 9)), transient=st.integers(0, 2))
def test_host_wide_answers_give_what_asking_each_domain_gives(
    tmp_path: Path, hosts: list[Host], autostart: set[int], transient: int
) -> None:
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    access = HostAccess(node_dir=tmp_path)
    for host in hosts:
        path = folder / f"{host.name}.xml"
        _write_node(path, host)
        vms = host.vms + host.copies
        _with_autostart(path, {vms[i].uuid for i in autostart if i < len(vms)})
        uri = f"test://{path}"
        fast = connect(uri, access=access)
        slow = _PerDomain(uri, libvirt.open(uri))
        for hv in (fast, slow):  # a running domain that is not persistent
            for n in range(transient):
                hv._conn.createXML(_TRANSIENT.format(n=n), 0)
        try:
            got, want = fast.read_inventory(), slow.read_inventory()
            assert got == want
            assert sum(v.autostart for v in got.vms) == len(autostart & set(range(len(vms))))
            assert sum(not v.persistent for v in got.vms) == transient
            known = {v.uuid: v.fingerprint for v in want.vms}
            again = fast.read_inventory(known)
            assert again.vms == () and sorted(again.unchanged) == sorted(known)
        finally:
            fast.close()
            slow.close()


@SETTINGS
@given(hosts=fleets())
def test_a_concurrent_sync_stores_what_syncing_one_host_at_a_time_stores(
    db: Database, tmp_path: Path, hosts: list[Host]
) -> None:
    for host in hosts:
        host.copies.clear()  # one host at a time would see a copy "migrate": not comparable
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    for host in hosts:
        _write_node(folder / f"{host.name}.xml", host)

    def synced(one_at_a_time: bool) -> dict[str, object]:
        _empty(db)
        inv = Inventory(
            db, SecretBox(Fernet.generate_key()), Clock(), HostAccess(node_dir=tmp_path)
        )
        try:
            for host in hosts:
                inv.add_host(host.name, f"test://{folder / host.name}.xml")
            if one_at_a_time:
                for host in hosts:
                    inv.sync([host.name])
            else:
                inv.sync()
        finally:
            inv.close()
        return _stored(db)

    assert synced(one_at_a_time=False) == synced(one_at_a_time=True)


def test_one_dead_host_among_twenty_leaves_the_other_nineteen_synced(
    db: Database, tmp_path: Path
) -> None:
    folder = tmp_path / "nodes"
    folder.mkdir()
    hosts = [Host(f"h{i}") for i in range(20)]
    inv = Inventory(db, SecretBox(Fernet.generate_key()), Clock(), HostAccess(node_dir=tmp_path))
    try:
        for i, host in enumerate(hosts):
            for n in range(3):
                uuid = f"00000000-0000-4000-8000-{i:06d}{n:06d}"
                host.vms.append(
                    VM(uuid, f"{host.name}-vm{n}", "running", 1, 256, None, None, [], [], None)
                )
            _write_node(folder / f"{host.name}.xml", host)
            inv.add_host(host.name, f"test://{folder / host.name}.xml")
        (folder / "h7.xml").write_text("<node><domain>cut off mid-write")
        report = inv.sync()
        listed = {h.name: h for h in inv.list_hosts()}
    finally:
        inv.close()
    by_name = {r.host: r for r in report.hosts}
    assert by_name["h7"].status == "unreachable"
    assert by_name["h7"].error == f"{NODE_FILE_FAILED}."
    assert listed["h7"].last_error == f"{NODE_FILE_FAILED}."
    others = [r for r in report.hosts if r.host != "h7"]
    assert len(others) == 19
    assert all(r.status == "ok" and r.error is None and r.vms_seen == 3 for r in others)
    assert report.count_of("created") == 57
    stored = _stored(db)["vms"]
    assert {v[2] for v in stored} == {h.name for h in hosts} - {"h7"}
    assert len(stored) == 57
