"""Issue 9 items 7 and 8 on real libvirtd hosts: metadata writes from several processes,
bridge-mode networks, virsh domrename, metadata changed only in the persistent definition."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid as uuidlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from guest import (
    GuestFactory,
    RealhostEnv,
    create_volume,
    migrate_live,
    remove_pool,
    run_virsh,
    start_dir_pool,
)
from lxml import etree
from tests.conftest import Clock
from tests.reclaim.conftest import Inbox, make_service, smtp  # noqa: F401  (fixture)

from corral.engines.reclaim import Policy
from corral.hypervisor.domxml import METADATA_NS
from corral.inventory.service import Inventory
from corral.notify.mailer import SmtpSettings
from corral.store.db import Database

FIELDS = ("owner", "department", "project", "purpose")


@pytest.fixture
def real_inventory(inventory: Inventory, realhost_uris: list[str]) -> Inventory:
    for i, uri in enumerate(realhost_uris, 1):
        inventory.add_host(f"real-{i}", uri)
    return inventory


def _virsh_meta(uri: str, name: str, *flags: str) -> dict[str, str | None]:
    root = etree.fromstring(run_virsh(uri, "metadata", name, "--uri", METADATA_NS, *flags).encode())
    return {f: root.findtext(f) for f in FIELDS}


def _corral(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "corral", *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _finish(proc: subprocess.Popen[str]) -> str:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return out


WRITER = """
import sys, time
from pathlib import Path

import libvirt
from lxml import etree

from corral.config import load_settings
from corral.inventory.service import Inventory

uuid, field, rounds, go, uri = sys.argv[1:6]
go = Path(go)
libvirt.registerErrorHandler(lambda _c, _e: None, None)
inv = Inventory.from_settings(load_settings())
conn = libvirt.open(uri)
while not go.exists():
    time.sleep(0.005)
for i in range(int(rounds)):
    value = f"{field}-{i}"
    inv.set_metadata(uuid, {field: value}, actor=field)
    dom = conn.lookupByUUIDString(uuid)
    xml = dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, "urn:corral:vm:1", 0)
    if etree.fromstring(xml.encode()).findtext(field) != value:
        print(f"{value} acknowledged, missing from the domain", flush=True)
"""


def test_metadata_writes_from_four_processes_all_reach_a_running_domain(
    guest_factory: GuestFactory, realhost_uris: list[str], db: Database, tmp_path: Path
) -> None:
    """Four processes at once, each writing its own field ten times through the service."""
    g = guest_factory(0)
    env = {
        **os.environ,
        "CORRAL_HOME": str(tmp_path / "home"),
        "CORRAL_DATABASE_URL": db.url.render_as_string(hide_password=False),
        "CORRAL_SECRET_KEY": Fernet.generate_key().decode(),
    }
    _finish(_corral(env, "hosts", "add", "real-1", realhost_uris[0]))
    _finish(_corral(env, "sync"))
    go = tmp_path / "go"
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, g.uuid, f, "10", str(go), realhost_uris[0]],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for f in FIELDS
    ]
    time.sleep(3)  # every writer is up and waiting
    go.touch()
    lost = [line for w in writers for line in _finish(w).splitlines()]
    assert lost == []
    expected = {f: f"{f}-9" for f in FIELDS}
    shown = json.loads(_finish(_corral(env, "vm", "show", g.uuid, "-o", "json")))
    assert {f: shown[f] for f in FIELDS} == expected
    assert _virsh_meta(realhost_uris[0], g.name, "--live") == expected
    assert _virsh_meta(realhost_uris[0], g.name, "--config") == expected
    _finish(_corral(env, "sync"))
    shown = json.loads(_finish(_corral(env, "vm", "show", g.uuid, "-o", "json")))
    assert {f: shown[f] for f in FIELDS} == expected


def test_a_nic_on_a_bridge_mode_network_counts_as_using_it(
    real_inventory: Inventory, guest_factory: GuestFactory, realhost_env: RealhostEnv
) -> None:
    assert realhost_env.network, "realhosts.sh gives every host a bridge-mode network"
    g = guest_factory(0, network=realhost_env.network)
    live = etree.fromstring(g.dom.XMLDesc(0).encode())
    assert live.find("devices/interface").get("type") == "bridge"  # what libvirt reports
    real_inventory.sync(["real-1"])
    nic = real_inventory.find_vm(g.uuid).nics[0]
    assert nic["network"] == realhost_env.network
    nets = {n.name: n for n in real_inventory.list_networks() if n.host == "real-1"}
    assert nets[realhost_env.network].vms >= 1
    unused = {(n.host, n.name) for n in real_inventory.list_networks(unused_only=True)}
    assert ("real-1", realhost_env.network) not in unused


def test_virsh_domrename_is_an_event_and_the_history_keeps_the_old_name(
    real_inventory: Inventory, guest_factory: GuestFactory, realhost_uris: list[str]
) -> None:
    g = guest_factory(0, start=False)
    real_inventory.sync(["real-1"])
    new_name = g.name + "-renamed"
    run_virsh(realhost_uris[0], "domrename", g.name, new_name)
    real_inventory.sync(["real-1"])
    vm = real_inventory.find_vm(g.uuid)
    assert vm.name == new_name
    renamed = [e for e in vm.history if e.kind == "renamed"]
    assert [e.details for e in renamed] == [{"from": g.name, "to": new_name}]
    created = next(e for e in vm.history if e.kind == "created")
    assert created.vm_name == g.name
    assert renamed[0].vm_name == new_name
    events = real_inventory.events(vm=g.uuid, kind="renamed")
    assert len(events) == 1


def test_metadata_set_only_in_the_persistent_definition_of_a_running_vm_is_seen(
    real_inventory: Inventory, guest_factory: GuestFactory, realhost_uris: list[str]
) -> None:
    g = guest_factory(0)
    real_inventory.sync(["real-1"])
    real_inventory.set_metadata(g.uuid, {"owner": "before"})
    real_inventory.sync(["real-1"])
    element = etree.Element("vm")
    etree.SubElement(element, "owner").text = "set-in-config"
    run_virsh(
        realhost_uris[0], "metadata", g.name, "--uri", METADATA_NS, "--key", "corral",
        "--set", etree.tostring(element, encoding="unicode"), "--config",
    )  # fmt: skip
    assert _virsh_meta(realhost_uris[0], g.name, "--live")["owner"] == "before"
    real_inventory.sync(["real-1"])
    assert real_inventory.find_vm(g.uuid).owner == "set-in-config"


# -- item 8(a): a pool shared by both hosts ---------------------------------------------


@pytest.fixture
def shared_pools(libvirt_conns: list[Any], tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    """One directory, a dir pool at that same path on each host (the hosts share a machine)."""
    name = f"corral-sync-shared-{uuidlib.uuid4().hex[:8]}"
    path = tmp_path / "shared"
    pools = (
        start_dir_pool(libvirt_conns[0], name, path),
        start_dir_pool(libvirt_conns[1], name, path),
    )
    yield pools
    pools[1].destroy()
    remove_pool(pools[0])


QUICK = Policy(
    notice_days=1, quarantine_days=1, cooling_off_days=1, approvals={}, shutdown_grace_s=5
)


def test_a_shared_pool_is_one_storage_and_its_linked_clone_base_is_never_deleted(
    real_inventory: Inventory,
    guest_factory: GuestFactory,
    shared_pools: tuple[Any, Any],
    smtp: tuple[Inbox, SmtpSettings],  # noqa: F811
    clock: Clock,
) -> None:
    pool_1, pool_2 = shared_pools
    base = create_volume(pool_1, "base.qcow2", size_mib=16)
    clone = create_volume(pool_1, "clone.qcow2", size_mib=16, backing=base)
    spare = create_volume(pool_1, "spare.qcow2", size_mib=16)
    pool_2.refresh(0)
    owner = guest_factory(0, disk=base, start=False)  # host 1: writes the base image
    linked = guest_factory(1, disk=clone, start=False)  # host 2: a linked clone of it
    real_inventory.sync()

    volumes = {v.path: v for v in real_inventory.list_volumes() if v.pool == pool_1.name()}
    assert set(volumes) == {str(base), str(clone), str(spare)}  # once each, not once per host
    assert all(v.hosts == ("real-1", "real-2") for v in volumes.values())
    assert volumes[str(base)].used_by == owner.uuid
    assert (volumes[str(clone)].used_by, volumes[str(clone)].used_by_host) == (
        linked.uuid,
        "real-2",
    )
    orphans = {v.path for v in real_inventory.list_volumes(orphaned_only=True)}
    assert str(spare) in orphans and str(base) not in orphans and str(clone) not in orphans

    # Reclaiming the base's VM on host 1 must not delete what host 2's clone is built on.
    _, settings = smtp
    svc = make_service(real_inventory, settings, QUICK)
    case = svc.flag(owner.name, category="powered_off", reason="unused", actor="ops")
    svc.run()
    outcomes = []
    for _ in range(3):
        clock.advance(days=2)
        outcomes += svc.run()
    failed = [o for o in outcomes if o.result == "failed"]
    assert failed and failed[-1].step == "delete", outcomes
    assert str(base) in failed[-1].detail and linked.name in failed[-1].detail
    assert base.exists() and clone.exists()
    assert svc.case(case.id).state != "deleted"
    assert owner.dom.connect().lookupByUUIDString(owner.uuid).UUIDString() == owner.uuid
    assert real_inventory.find_vm(owner.uuid).deleted_at is None


def test_after_a_live_migration_a_shared_volume_follows_its_vm(
    real_inventory: Inventory,
    guest_factory: GuestFactory,
    shared_pools: tuple[Any, Any],
    realhost_uris: list[str],
) -> None:
    pool_1, pool_2 = shared_pools
    disk = create_volume(pool_1, "moving.qcow2", size_mib=16)
    pool_2.refresh(0)
    g = guest_factory(0, disk=disk)
    real_inventory.sync()
    migrate_live(g.dom, realhost_uris[1])
    real_inventory.sync()
    assert real_inventory.find_vm(g.uuid).host == "real-2"
    (row,) = [v for v in real_inventory.list_volumes() if v.path == str(disk)]
    assert (row.used_by, row.used_by_host, row.hosts) == (
        g.uuid,
        "real-2",
        ("real-1", "real-2"),
    )
