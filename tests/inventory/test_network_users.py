"""Issue 16: the networks list's VM counts are kept per (host, network) as VMs change, not
counted from every VM's NICs when a page is read (corral.store.network_users).

Random fleets of test-driver hosts, each with networks (on a bridge of their own, one bridge
two networks share, none) and VMs with NICs of every kind the count tells apart (on a
network by name, on a bridge, on a network the host does not have, a direct NIC; a bridge
NIC naming its network is libvirt's live XML, which the test driver does not keep: see
test_keyset_pages), are synced; then changed (VMs added, removed, moved between hosts, NICs
put on other networks with the same MACs, bridges renamed, networks added and dropped) and
synced again, every host or one at a time; then hosts are removed. After each step, on
SQLite and PostgreSQL, the list's counts, its unused filter and its totals equal an oracle
built from the fleet's own description, and the kept rows equal a count from scratch.
"""

from __future__ import annotations

import random
import uuid as uuidlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from lxml import etree
from sqlalchemy import select

from corral.inventory.keyset import network_page
from corral.inventory.service import Inventory
from corral.store import models as m
from corral.store.db import MIGRATIONS, Database
from corral.store.network_users import recount
from tests.inventory.conftest import TEST_NS
from tests.rows import vm_row


@dataclass
class Nic:
    kind: str  # network | bridge | direct
    source: str


@dataclass
class VM:
    uuid: str
    name: str
    nics: list[Nic]


@dataclass
class Host:
    name: str
    nets: dict[str, str | None]  # network -> its bridge
    vms: list[VM] = field(default_factory=list)


# -- the oracle: which network each NIC is on, from the description alone -------------------
def _network_of(nic: Nic, host: Host) -> str | None:
    if nic.kind == "network":
        return nic.source
    if nic.kind == "bridge":
        on = [name for name, bridge in host.nets.items() if bridge == nic.source]
        return max(on) if on else None
    return None


def _oracle(hosts: list[Host]) -> dict[tuple[str, str], int]:
    return {
        (h.name, net): sum(1 for vm in h.vms if net in {_network_of(n, h) for n in vm.nics})
        for h in hosts
        for net in h.nets
    }


# -- random fleets and changes -------------------------------------------------------------
def _fleet(rng: random.Random, n_hosts: int) -> list[Host]:
    hosts = []
    for i in range(n_hosts):
        nets: dict[str, str | None] = {"default": "virbr0", "lab": f"br-{i}", "isolated": None}
        if rng.random() < 0.5:
            nets["backup"] = f"br-{i}"  # two networks on one bridge: the later name wins
        hosts.append(Host(f"h{i}", nets))
    for k in range(rng.randrange(8, 20)):
        rng.choice(hosts).vms.append(_vm(rng, k))
    return hosts


def _vm(rng: random.Random, k: int) -> VM:
    return VM(str(uuidlib.UUID(int=rng.getrandbits(128), version=4)), f"vm{k}", _nics(rng))


def _nics(rng: random.Random) -> list[Nic]:
    return [_nic(rng) for _ in range(rng.choice([0, 1, 1, 2, 3]))]


def _nic(rng: random.Random) -> Nic:
    kind = rng.choice(["network", "bridge", "direct"])
    if kind == "network":
        return Nic("network", rng.choice(["default", "lab", "backup", "elsewhere"]))
    if kind == "bridge":
        return Nic("bridge", rng.choice(["virbr0", f"br-{rng.randrange(4)}", "br-none"]))
    return Nic("direct", "eth0")


def _change(rng: random.Random, hosts: list[Host], first: int) -> None:
    """VMs removed, added, moved to another host, their NICs re-pointed (same MACs); bridges
    renamed, networks added and dropped."""
    for h in hosts:
        for vm in list(h.vms):
            roll = rng.random()
            if roll < 0.15:
                h.vms.remove(vm)
            elif roll < 0.3:
                h.vms.remove(vm)
                rng.choice(hosts).vms.append(vm)
            elif roll < 0.5 and vm.nics:
                vm.nics[rng.randrange(len(vm.nics))] = _nic(rng)
        for k in range(rng.randrange(3)):
            h.vms.append(_vm(rng, first + 10 * hosts.index(h) + k))
        if rng.random() < 0.3:
            h.nets["lab"] = f"br-{rng.randrange(4)}"
        if rng.random() < 0.3 and h.nets.pop("backup", None) is None:
            h.nets["backup"] = "virbr0"
        if rng.random() < 0.2:
            h.nets["elsewhere"] = None  # the NICs that named it before it existed count


# -- node files ----------------------------------------------------------------------------
def _write(folder: Path, host: Host) -> Path:
    node = etree.Element("node", nsmap={"test": TEST_NS})
    cpu = etree.SubElement(node, "cpu")
    for tag, value in (("mhz", "2000"), ("nodes", "1"), ("sockets", "1"), ("cores", "4")):
        etree.SubElement(cpu, tag).text = value
    etree.SubElement(cpu, "threads").text = "2"
    etree.SubElement(cpu, "active").text = "8"
    etree.SubElement(node, "memory").text = str(64 * 1024 * 1024)
    for vm in host.vms:
        d = etree.SubElement(node, "domain", type="test")
        etree.SubElement(d, "name").text = vm.name
        etree.SubElement(d, "uuid").text = vm.uuid
        etree.SubElement(d, "memory", unit="MiB").text = "512"
        etree.SubElement(d, "vcpu").text = "1"
        etree.SubElement(etree.SubElement(d, "os"), "type").text = "hvm"
        devices = etree.SubElement(d, "devices")
        for k, nic in enumerate(vm.nics):
            el = etree.SubElement(devices, "interface", type=nic.kind)
            etree.SubElement(el, "mac", address=f"52:54:00:{vm.uuid[:2]}:{vm.uuid[2:4]}:{k:02x}")
            src = {"network": {"network": nic.source}, "bridge": {"bridge": nic.source}}
            attrs = src.get(nic.kind, {"dev": nic.source, "mode": "bridge"})
            etree.SubElement(el, "source", attrs)
        etree.SubElement(d, f"{{{TEST_NS}}}runstate").text = "1"
    for i, (name, bridge) in enumerate(sorted(host.nets.items())):
        net = etree.SubElement(node, "network")
        etree.SubElement(net, "name").text = name
        etree.SubElement(
            net, "uuid"
        ).text = f"0b000000-0000-4000-8000-{int(host.name[1:]):08d}{i:04d}"
        if bridge:
            etree.SubElement(net, "bridge", name=bridge)
    path = folder / f"{host.name}.xml"
    etree.ElementTree(node).write(str(path))
    return path


# -- what the list says ----------------------------------------------------------------------
def _listed(inv: Inventory, *, unused_only: bool = False) -> list[tuple[str, str, int]]:
    """The list walked 2 rows a page, as (host, network, VMs)."""
    out: list[tuple[str, str, int]] = []
    after = None
    while True:
        page = inv.networks_page(after=after, limit=2, unused_only=unused_only)
        out += [(n.host, n.name, n.vms) for n in page.items]
        if page.next_key is None:
            return out
        after = page.next_key


def _kept(inv: Inventory) -> set[tuple[int, str, int]]:
    with inv.db.session() as s:
        q = select(
            m.HostNetworkUsers.host_id, m.HostNetworkUsers.network, m.HostNetworkUsers.vm_count
        )
        return {(h, n, c) for h, n, c in s.execute(q)}


def _check(inv: Inventory, hosts: list[Host]) -> None:
    want = _oracle(hosts)
    listed = _listed(inv)
    assert {(h, n): c for h, n, c in listed} == want
    assert [(h, n) for h, n, _ in listed] == sorted(want)
    assert [(h, n) for h, n, _ in _listed(inv, unused_only=True)] == sorted(
        k for k, c in want.items() if c == 0
    )
    assert inv.networks_page(after=None, limit=1, count=True).total == len(want)
    unused = inv.networks_page(after=None, limit=1, unused_only=True, count=True).total
    assert unused == sum(1 for c in want.values() if c == 0)
    assert [(n.host, n.name, n.vms) for n in inv.list_networks()] == listed
    kept = _kept(inv)
    with inv.db.session() as s:
        registered = list(s.scalars(select(m.Host.id)))
        assert {h for h, *_ in kept} <= set(registered)  # a removed host's rows went with it
        recount(s, registered)
    assert _kept(inv) == kept  # what was kept is what a count from scratch gives


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_kept_counts_follow_syncs_changes_and_host_removal(
    inventory: Inventory, tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    hosts = _fleet(rng, 4)
    for h in hosts:
        inventory.add_host(h.name, f"test://{_write(tmp_path, h)}")
    inventory.sync()
    _check(inventory, hosts)
    assert any(c for c in _oracle(hosts).values()), "the fleet must use some network"

    for step in range(3):  # changes everywhere, every host synced
        _change(rng, hosts, 100 * (step + 1))
        for h in hosts:
            _write(tmp_path, h)
        inventory.sync()
        _check(inventory, hosts)

    for h in hosts:  # one change at a time: a NIC re-pointed (same MAC), then a bridge moved
        vm = next((vm for vm in h.vms if vm.nics), None)
        if vm is None:
            continue
        vm.nics[0] = Nic("network", "isolated" if _network_of(vm.nics[0], h) == "lab" else "lab")
        _write(tmp_path, h)
        inventory.sync()
        _check(inventory, hosts)
        vm.nics[0] = Nic("bridge", f"br-new-{h.name}")
        _write(tmp_path, h)
        inventory.sync()
        _check(inventory, hosts)
        h.nets["lab"] = f"br-new-{h.name}"  # only the host's networks change
        _write(tmp_path, h)
        inventory.sync()
        _check(inventory, hosts)

    for h in hosts:  # a VM on a network deleted, then back (its tombstone lives again)
        using = [vm for vm in h.vms if any(_network_of(n, h) in h.nets for n in vm.nics)]
        if not using:
            continue
        h.vms.remove(using[0])
        _write(tmp_path, h)
        inventory.sync()
        _check(inventory, hosts)
        h.vms.append(using[0])
        _write(tmp_path, h)
        inventory.sync()
        _check(inventory, hosts)

    for h in hosts:  # a VM moves, and only its new host is synced
        moving = next((vm for other in hosts if other is not h for vm in other.vms), None)
        if moving is None:
            continue
        source = next(other for other in hosts if moving in other.vms)
        source.vms.remove(moving)
        h.vms.append(moving)
        _write(tmp_path, source)
        _write(tmp_path, h)
        inventory.sync([h.name])
        _check(inventory, hosts)

    inventory.remove_host(hosts[1].name)
    inventory.remove_host(hosts[2].name, forget_vms=True)
    _check(inventory, [hosts[0], hosts[3]])


def test_the_migration_counts_the_users_of_the_networks_already_stored(db: Database) -> None:
    """Migration 2600 fills the counts from the VMs and networks stored before it (the
    page read none of its own after it), and goes down and up again."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "2400")
    now = datetime(2026, 12, 1, tzinfo=UTC)
    with db.session() as s:
        for i in range(3):
            host = m.Host(name=f"h{i}", uri=f"test:///h{i}", status="ok", created_at=now)
            s.add(host)
            s.flush()
            for net, bridge in (("default", "virbr0"), ("lab", "br-lab"), ("idle", None)):
                s.add(m.Network(host_id=host.id, name=net, uuid=net, active=True, bridge=bridge))
            nics = [
                {"type": "network", "source": "default"},
                {"type": "bridge", "source": "br-lab"},
            ]
            for k in range(i + 1):
                s.add(vm_row(f"h{i}-vm{k}", now, host_id=host.id, nics=nics[: k % 2 + 1]))
            s.add(vm_row(f"h{i}-gone", now, host_id=host.id, nics=nics, deleted_at=now))
    db.migrate()
    with db.session() as s:
        got = {(n.host, n.name): n.vms for n in network_page(s).items}
    assert got == {
        **{(f"h{i}", "default"): i + 1 for i in range(3)},
        **{(f"h{i}", "lab"): (i + 1) // 2 for i in range(3)},
        **{(f"h{i}", "idle"): 0 for i in range(3)},
    }
