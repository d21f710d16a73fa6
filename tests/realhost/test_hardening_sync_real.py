"""Issue 9 items 7 and 8 on real libvirtd hosts: metadata writes from several processes,
bridge-mode networks, virsh domrename, metadata changed only in the persistent definition."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from guest import GuestFactory, RealhostEnv, run_virsh
from lxml import etree

from corral.hypervisor.domxml import METADATA_NS
from corral.inventory.service import Inventory
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


def test_metadata_writes_from_four_processes_all_reach_a_running_domain(
    guest_factory: GuestFactory, realhost_uris: list[str], db: Database, tmp_path: Path
) -> None:
    """Four `corral vm set` processes at once, each its own field, three rounds."""
    g = guest_factory(0)
    env = {
        **os.environ,
        "CORRAL_HOME": str(tmp_path / "home"),
        "CORRAL_DATABASE_URL": db.url.render_as_string(hide_password=False),
        "CORRAL_SECRET_KEY": Fernet.generate_key().decode(),
    }
    _finish(_corral(env, "hosts", "add", "real-1", realhost_uris[0]))
    _finish(_corral(env, "sync"))
    for rnd in range(3):
        procs = [_corral(env, "vm", "set", g.uuid, f"--{f}", f"{f}-{rnd}") for f in FIELDS]
        for p in procs:
            _finish(p)
    expected = {f: f"{f}-2" for f in FIELDS}
    shown = json.loads(_finish(_corral(env, "vm", "show", g.uuid, "-o", "json")))
    stored = {f: shown[f] for f in FIELDS}
    assert stored == expected
    assert _virsh_meta(realhost_uris[0], g.name, "--live") == expected
    assert _virsh_meta(realhost_uris[0], g.name, "--config") == expected
    _finish(_corral(env, "sync"))
    shown = json.loads(_finish(_corral(env, "vm", "show", g.uuid, "-o", "json")))
    stored = {f: shown[f] for f in FIELDS}
    assert stored == expected


def test_a_nic_on_a_bridge_mode_network_counts_as_using_it(
    real_inventory: Inventory, guest_factory: GuestFactory, realhost_env: RealhostEnv
) -> None:
    assert realhost_env.network, "realhosts.sh gives every host a bridge-mode network"
    g = guest_factory(0, network=realhost_env.network)
    live = etree.fromstring(g.dom.XMLDesc(0).encode())
    assert live.find("devices/interface").get("type") == "bridge"  # what libvirt reports
    real_inventory.sync(["real-1"])
    nic = real_inventory.find_vm(g.uuid)["nics"][0]
    assert nic["network"] == realhost_env.network
    nets = {n["name"]: n for n in real_inventory.list_networks() if n["host"] == "real-1"}
    assert nets[realhost_env.network]["vms"] >= 1
    unused = {(n["host"], n["name"]) for n in real_inventory.list_networks(unused_only=True)}
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
    assert vm["name"] == new_name
    renamed = [e for e in vm["history"] if e["kind"] == "renamed"]
    assert [e["details"] for e in renamed] == [{"from": g.name, "to": new_name}]
    created = next(e for e in vm["history"] if e["kind"] == "created")
    assert created["vm_name"] == g.name
    assert renamed[0]["vm_name"] == new_name
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
    assert real_inventory.find_vm(g.uuid)["owner"] == "set-in-config"
