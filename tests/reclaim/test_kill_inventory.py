"""``corral reclaim run`` killed by SIGKILL at random moments: the inventory stays true.

Real processes on a test-driver host of twelve VMs, a real SMTP server, no manual sync: every
VM whose case reached ``deleted`` is gone from ``corral vms`` as soon as the killed runs are
over and after one more run, its volumes are gone from ``corral volumes``, and its history
holds exactly one ``deleted`` event.
"""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from corral.config import Settings
from corral.engines.costing import load_cost_model
from corral.engines.reclaim import load_policy
from corral.inventory.service import Inventory
from corral.reclaim.service import ReclaimService
from tests.reclaim.conftest import Inbox
from tests.reclaim.test_cli import CORRAL, NO_WAIT, Cli, _env

N_VMS = 12
TEST_NS = "http://libvirt.org/schemas/domain/test/1.0"
POOL = "/var/lib/libvirt/images/k"
MAX_KILLED_RUNS = 60


def _node_file(path: Path) -> None:
    """One host with N_VMS shut-off VMs, each with its own pool volume."""
    node = etree.Element("node", nsmap={"test": TEST_NS})
    cpu = etree.SubElement(node, "cpu")
    for tag, text in (("mhz", "2400"), ("nodes", "1"), ("sockets", "2"), ("cores", "8")):
        etree.SubElement(cpu, tag).text = text
    etree.SubElement(cpu, "threads").text = "2"
    etree.SubElement(cpu, "active").text = "32"
    etree.SubElement(node, "memory").text = str(128 * 1024 * 1024)
    pool = etree.Element("pool", type="dir")
    etree.SubElement(pool, "name").text = "images"
    etree.SubElement(pool, "uuid").text = "0c000000-0000-4000-8000-00000000b0b0"
    etree.SubElement(pool, "capacity", unit="TiB").text = "2"
    etree.SubElement(etree.SubElement(pool, "target"), "path").text = POOL
    for i in range(N_VMS):
        name = f"tmp-{i:02d}"
        dom = etree.SubElement(node, "domain", type="test")
        etree.SubElement(dom, "name").text = name
        etree.SubElement(dom, "uuid").text = f"0c000000-0000-4000-8000-0000000000{i:02d}"
        etree.SubElement(dom, "memory", unit="MiB").text = "1024"
        etree.SubElement(dom, "vcpu").text = "1"
        etree.SubElement(etree.SubElement(dom, "os"), "type").text = "hvm"
        disk = etree.SubElement(etree.SubElement(dom, "devices"), "disk", type="file")
        disk.set("device", "disk")
        etree.SubElement(disk, "driver", name="qemu", type="qcow2")
        etree.SubElement(disk, "source", file=f"{POOL}/{name}.qcow2")
        etree.SubElement(disk, "target", dev="vda", bus="virtio")
        etree.SubElement(dom, f"{{{TEST_NS}}}runstate").text = "1"
        vol = etree.SubElement(pool, "volume", type="file")
        etree.SubElement(vol, "name").text = f"{name}.qcow2"
        etree.SubElement(vol, "capacity", unit="GiB").text = "10"
        etree.SubElement(vol, "allocation", unit="GiB").text = "2"
        target = etree.SubElement(vol, "target")
        etree.SubElement(target, "path").text = f"{POOL}/{name}.qcow2"
        etree.SubElement(target, "format", type="qcow2")
    node.append(pool)
    etree.ElementTree(node).write(str(path), pretty_print=True)


def _cli(tmp_path: Path, smtp_port: int) -> Cli:
    policy = tmp_path / "reclaim.yaml"
    policy.write_text(NO_WAIT + "approvals:\n  delete: 0\n", encoding="utf-8")
    home = tmp_path / "home"
    home.mkdir()
    node = home / "host-k.xml"
    _node_file(node)
    inv = Inventory.from_settings(Settings(home, f"sqlite:///{home / 'corral.db'}"))
    inv.add_host("k", f"test://{node}")
    inv.sync()
    service = ReclaimService(inv, load_policy(policy), load_cost_model(None), None)
    for i in range(N_VMS):  # in-process: twelve CLI starts would only cost time
        service.flag(f"tmp-{i:02d}", category="manual", reason="test", actor="ops")
    inv.db.dispose()
    return Cli(home, _env(home, smtp_port, policy))


def _killed_runs(cli: Cli, rng: random.Random) -> int:
    """Run ``reclaim run`` again and again until every case is deleted, killing each run.

    Each run is killed a random few milliseconds after a random one of the steps it commits
    (at most as many as there are open cases), so kills land in every phase, before and after
    commits, and never leave a run to finish its closing sync.
    """
    for attempt in range(1, MAX_KILLED_RUNS + 1):
        open_cases = N_VMS - _count(
            cli.home, "SELECT count(*) FROM reclaim_cases WHERE state = 'deleted'"
        )
        target = _commits(cli.home) + rng.randint(1, max(1, open_cases))
        proc = subprocess.Popen(
            [*CORRAL, "reclaim", "run"],
            env=cli.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        while proc.poll() is None and _commits(cli.home) < target:
            time.sleep(0.01)
        time.sleep(rng.uniform(0, 0.05))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if _states(cli.home) == {"deleted"}:
            return attempt
    raise AssertionError(f"cases not all deleted after {MAX_KILLED_RUNS} runs")


def _count(home: Path, query: str) -> int:
    with sqlite3.connect(home / "corral.db", timeout=30) as conn:
        return int(conn.execute(query).fetchone()[0])


def _commits(home: Path) -> int:
    """Steps committed so far: each commit writes one event of the case's step."""
    kinds = "'reclaim-notified', 'quarantined', 'archived', 'reclaim-deleted'"
    return _count(home, f"SELECT count(*) FROM events WHERE kind IN ({kinds})")


def _states(home: Path) -> set[str]:
    with sqlite3.connect(home / "corral.db", timeout=30) as conn:
        return {state for (state,) in conn.execute("SELECT state FROM reclaim_cases")}


def _cases(cli: Cli) -> list[dict[str, Any]]:
    return list(cli.json("reclaim", "list"))


def _assert_inventory_matches_cases(cli: Cli) -> None:
    cases = _cases(cli)
    deleted = {c["vm"] for c in cases if c["state"] == "deleted"}
    listed = {v["name"] for v in cli.json("vms")}
    assert deleted and not (deleted & listed), sorted(deleted & listed)
    volumes = {v["path"] for v in cli.json("volumes")}
    assert not {f"{POOL}/{name}.qcow2" for name in deleted} & volumes
    events = cli.json("events", "--kind", "deleted", "--limit", "1000")
    per_vm: dict[str, int] = {}
    for event in events:
        per_vm[event["vm_name"]] = per_vm.get(event["vm_name"], 0) + 1
    assert {vm: n for vm, n in per_vm.items() if vm in deleted} == dict.fromkeys(deleted, 1)


@pytest.mark.timeout(900)
def test_killed_runs_leave_no_deleted_vm_listed(tmp_path: Path, smtp: tuple[Inbox, Any]) -> None:
    _, settings = smtp
    cli = _cli(tmp_path, settings.port)
    attempts = _killed_runs(cli, random.Random(20261203))
    assert attempts >= 4  # at least one killed run per step: notify, quarantine, archive, delete
    _assert_inventory_matches_cases(cli)  # right after the kills, before any further run
    summary = json.loads(cli("reclaim", "run", "--output", "json").stdout)
    assert summary["outcomes"] == []
    _assert_inventory_matches_cases(cli)
    assert {c["state"] for c in _cases(cli)} == {"deleted"}
