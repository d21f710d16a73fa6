"""Issue 15 item 7: the bulk first sync stores exactly the fleet its hosts hold.

Random fleets (hosts, VMs with metadata, disks on pool volumes, NICs, snapshots, a VM left
defined on two hosts) are written as test-driver node files and synced once. The rows the
sync wrote (VMs, volumes, pools, networks, events) must equal a reference built from the
fleet's own description, independently of the sync's code, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import itertools
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from sqlalchemy import delete, select

from corral.hypervisor.uri import HostAccess
from corral.inventory.service import Inventory
from corral.security.secrets import SecretBox
from corral.store import models as m
from corral.store.db import Database
from tests.inventory.conftest import TEST_NS, Clock

CORRAL_NS = "urn:corral:vm:1"
RUNSTATES = {"running": "1", "paused": "3", "shutoff": "5"}
GIB = 1024**3


@dataclass
class Disk:
    target: str
    volume: str  # file name in the host's pool
    gib: int


@dataclass
class VM:
    uuid: str
    name: str
    state: str
    vcpus: int
    memory_mib: int
    owner: str | None
    department: str | None
    disks: list[Disk]
    macs: list[str]
    snapshot_at: int | None  # epoch seconds of its one snapshot, if any


@dataclass
class Host:
    name: str
    vms: list[VM] = field(default_factory=list)
    orphans: list[tuple[str, int]] = field(default_factory=list)  # volumes no VM uses
    copies: list[VM] = field(default_factory=list)  # shut-off copies of other hosts' VMs


@st.composite
def fleets(draw: st.DrawFn) -> list[Host]:
    hosts = [Host(f"h{i}") for i in range(draw(st.integers(1, 3)))]
    states = st.sampled_from(sorted(RUNSTATES))
    uuids = draw(st.lists(st.uuids(version=4).map(str), min_size=1, max_size=10, unique=True))
    macs = itertools.count(1)
    for n, uuid in enumerate(uuids):
        host = draw(st.sampled_from(hosts))
        disks = [
            Disk(target, f"vm{n}-{target}.qcow2", draw(st.sampled_from([1, 20, 80])))
            for target in ("vda", "vdb")[: draw(st.integers(0, 2))]
        ]
        host.vms.append(
            VM(
                uuid=uuid,
                name=f"vm-{n}",
                state=draw(states),
                vcpus=draw(st.integers(1, 16)),
                memory_mib=draw(st.sampled_from([256, 1024, 4096, 65536])),
                owner=draw(st.none() | st.sampled_from(["alice", "bob", "Zoë"])),
                department=draw(st.none() | st.sampled_from(["R&D", "Finance"])),
                disks=disks,
                macs=[f"52:54:00:00:00:{next(macs):02x}" for _ in range(draw(st.integers(0, 2)))],
                snapshot_at=draw(st.none() | st.integers(1_600_000_000, 1_700_000_000)),
            )
        )
    for host in hosts:
        for i in range(draw(st.integers(0, 2))):
            host.orphans.append((f"orphan-{host.name}-{i}.img", 5))
    placed = [(h, vm) for h in hosts for vm in h.vms]
    if len(hosts) > 1 and draw(st.booleans()):
        # A shut-off copy of a running VM on another host, before or after it in the sync's
        # order (a migration left it defined there): the running one is the VM.
        host, vm = draw(st.sampled_from(placed))
        vm.state = "running"
        other = draw(st.sampled_from([h for h in hosts if h is not host]))
        other.copies.append(
            VM(vm.uuid, vm.name, "shutoff", vm.vcpus, vm.memory_mib, None, None, [], [], None)
        )
    return hosts


def _pool_path(host: str) -> str:
    return f"/images/{host}"


def _write_node(path: Path, host: Host) -> None:
    node = etree.Element("node", nsmap={"test": TEST_NS})
    cpu = etree.SubElement(node, "cpu")
    for tag, text in (("mhz", "2000"), ("nodes", "1"), ("sockets", "1"), ("cores", "4")):
        etree.SubElement(cpu, tag).text = text
    etree.SubElement(cpu, "threads").text = "2"
    etree.SubElement(cpu, "active").text = "8"
    etree.SubElement(node, "memory").text = str(64 * 1024 * 1024)
    for vm in host.vms + host.copies:
        _write_domain(node, host.name, vm)
    pool = etree.SubElement(node, "pool", type="dir")
    etree.SubElement(pool, "name").text = "images"
    etree.SubElement(pool, "uuid").text = f"00000000-0000-4000-8000-{int(host.name[1:]):012d}"
    etree.SubElement(pool, "capacity", unit="TiB").text = "1"
    etree.SubElement(etree.SubElement(pool, "target"), "path").text = _pool_path(host.name)
    volumes = [(d.volume, d.gib) for vm in host.vms for d in vm.disks] + host.orphans
    for name, gib in volumes:
        vol = etree.SubElement(pool, "volume", type="file")
        etree.SubElement(vol, "name").text = name
        etree.SubElement(vol, "capacity", unit="GiB").text = str(gib)
        etree.SubElement(
            etree.SubElement(vol, "target"), "path"
        ).text = f"{_pool_path(host.name)}/{name}"
    etree.ElementTree(node).write(str(path))


def _write_domain(node: etree._Element, host: str, vm: VM) -> None:
    d = etree.SubElement(node, "domain", type="test")
    etree.SubElement(d, "name").text = vm.name
    etree.SubElement(d, "uuid").text = vm.uuid
    if vm.owner or vm.department:
        meta = etree.SubElement(
            etree.SubElement(d, "metadata"), f"{{{CORRAL_NS}}}vm", nsmap={"corral": CORRAL_NS}
        )
        if vm.owner:
            etree.SubElement(meta, f"{{{CORRAL_NS}}}owner").text = vm.owner
        if vm.department:
            etree.SubElement(meta, f"{{{CORRAL_NS}}}department").text = vm.department
    etree.SubElement(d, "memory", unit="MiB").text = str(vm.memory_mib)
    etree.SubElement(d, "vcpu").text = str(vm.vcpus)
    etree.SubElement(etree.SubElement(d, "os"), "type").text = "hvm"
    devices = etree.SubElement(d, "devices")
    for disk in vm.disks:
        el = etree.SubElement(devices, "disk", type="file", device="disk")
        etree.SubElement(el, "source", file=f"{_pool_path(host)}/{disk.volume}")
        etree.SubElement(el, "target", dev=disk.target, bus="virtio")
    for mac in vm.macs:
        nic = etree.SubElement(devices, "interface", type="network")
        etree.SubElement(nic, "mac", address=mac)
        etree.SubElement(nic, "source", network="default")
    etree.SubElement(d, f"{{{TEST_NS}}}runstate").text = RUNSTATES[vm.state]
    if vm.snapshot_at is not None:
        snap = etree.SubElement(d, f"{{{TEST_NS}}}domainsnapshot")
        etree.SubElement(snap, "name").text = "snap"
        etree.SubElement(snap, "creationTime").text = str(vm.snapshot_at)
        etree.SubElement(snap, "state").text = "shutoff"
        etree.SubElement(snap, "active").text = "1"


# -- the reference: what the store must hold, from the fleet's description alone -----------
def _expected(hosts: list[Host], now: datetime) -> dict[str, Any]:
    vms, volumes, events = set(), set(), set()
    for host in hosts:
        for vm in host.vms:
            disk_bytes = sum(d.gib * GIB for d in vm.disks)
            vms.add(
                (
                    vm.uuid,
                    vm.name,
                    host.name,
                    vm.state,
                    vm.vcpus,
                    vm.memory_mib,
                    vm.memory_mib,
                    vm.owner,
                    vm.department,
                    disk_bytes,
                    tuple(sorted((d.target, _path(host, d), d.gib * GIB) for d in vm.disks)),
                    tuple(sorted(vm.macs)),
                    _snapshots(vm),
                    now,
                    None,
                )
            )
            events.add(
                (
                    "created",
                    vm.uuid,
                    host.name,
                    (("discovered", True), ("host", host.name), ("state", vm.state)),
                )
            )
            for d in vm.disks:
                volumes.add((host.name, d.volume, _path(host, d), d.gib * GIB, vm.uuid))
        for name, gib in host.orphans:
            volumes.add((host.name, name, f"{_pool_path(host.name)}/{name}", gib * GIB, None))
    pools = {(h.name, "images", _pool_path(h.name)) for h in hosts}
    return {"vms": vms, "volumes": volumes, "events": events, "pools": pools}


def _path(host: Host, d: Disk) -> str:
    return f"{_pool_path(host.name)}/{d.volume}"


def _snapshots(vm: VM) -> tuple[tuple[str, str], ...]:
    if vm.snapshot_at is None:
        return ()
    return (("snap", datetime.fromtimestamp(vm.snapshot_at, UTC).isoformat()),)


# -- what the store holds -----------------------------------------------------------------
def _stored(db: Database) -> dict[str, Any]:
    with db.session() as s:
        hosts = dict(s.execute(select(m.Host.id, m.Host.name)).all())
        vms = {
            (
                v.uuid,
                v.name,
                hosts.get(v.host_id),
                v.state,
                v.vcpus,
                v.memory_max_mib,
                v.memory_mib,
                v.owner,
                v.department,
                v.disk_bytes,
                tuple(sorted((d["target"], d["path"], d["capacity_bytes"]) for d in v.disks)),
                tuple(sorted(n["mac"] for n in v.nics)),
                tuple((x["name"], x["created_at"]) for x in v.snapshots),
                v.first_seen_at,
                v.deleted_at,
            )
            for v in s.scalars(select(m.VM))
        }
        assert all(
            v.tags == [] and v.snapshot_count == len(v.snapshots) and v.updated_at == v.state_since
            for v in s.scalars(select(m.VM))
        )
        pools = {p.id: (hosts[p.host_id], p.name, p.path) for p in s.scalars(select(m.Pool))}
        volumes = {
            (pools[v.pool_id][0], v.name, v.path, v.capacity_bytes, v.used_by)
            for v in s.scalars(select(m.Volume))
        }
        events = {
            (e.kind, e.vm_uuid, e.host_name, tuple(sorted(e.details.items())))
            for e in s.scalars(select(m.Event))
        }
        n_events = len(s.scalars(select(m.Event.id)).all())
    return {
        "vms": vms,
        "volumes": volumes,
        "events": events,
        "pools": set(pools.values()),
        "n_events": n_events,
    }


def _empty(db: Database) -> None:
    with db.session() as s:
        for model in (m.Event, m.Volume, m.Pool, m.Network, m.VM, m.Host):
            s.execute(delete(model))


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(hosts=fleets())
def test_a_first_sync_stores_exactly_the_fleet_of_the_node_files(
    db: Database, tmp_path: Path, hosts: list[Host]
) -> None:
    _empty(db)
    clock = Clock()
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    inv = Inventory(db, SecretBox(Fernet.generate_key()), clock, HostAccess(node_dir=tmp_path))
    try:
        for host in hosts:
            path = folder / f"{host.name}.xml"
            _write_node(path, host)
            inv.add_host(host.name, f"test://{path}")
        report = inv.sync()
    finally:
        inv.close()
    want = _expected(hosts, clock())
    got = _stored(db)
    assert got["vms"] == want["vms"]
    assert got["volumes"] == want["volumes"]
    assert got["pools"] == want["pools"]
    assert got["events"] == want["events"]
    assert got["n_events"] == len(want["events"]) == report.count_of("created")
