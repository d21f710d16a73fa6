"""Planning on the live inventory: the fleet document of a real test-driver sync, and the CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from lxml import etree

from corral.inventory.service import Inventory
from corral.services.fleet import (
    FORMAT,
    FleetOrigin,
    live_document,
    live_fleet,
    load_fleet_source,
    read_fleet_file,
    write_fleet_file,
)
from tests.freshdb import migrated_home

NODES = Path(__file__).resolve().parents[1] / "fixtures" / "nodes"


@pytest.fixture
def synced(inventory: Inventory, tmp_path: Path) -> Inventory:
    """host-a and host-b synced from copies of the node files; host-b's VM renamed web-01."""
    nodes = tmp_path / "nodes"
    shutil.copytree(NODES, nodes)
    tree = etree.parse(str(nodes / "host-b.xml"))
    (name,) = tree.xpath("//*[local-name()='domain']/*[local-name()='name']")
    name.text = "web-01"
    tree.write(str(nodes / "host-b.xml"))
    for host in ("host-a", "host-b"):
        inventory.add_host(host, f"test://{nodes / f'{host}.xml'}")
    inventory.sync()
    return inventory


def test_live_document_maps_hosts_and_vms(synced: Inventory) -> None:
    doc = live_document(synced)
    assert doc["format"] == FORMAT
    assert {h["name"] for h in doc["hosts"]} == {"host-a", "host-b"}
    for host in doc["hosts"]:
        assert host["cores"] > 0 and host["cpu_mhz"] > 0 and host["memory_mib"] > 0
    names = sorted(v["name"] for v in doc["vms"])
    # the two web-01s are told apart by their UUIDs; every VM keeps its UUID
    assert [n for n in names if n.startswith("web-01")] == sorted(
        f"web-01#{v['uuid']}" for v in doc["vms"] if v["name"].startswith("web-01")
    )
    assert len([n for n in names if n.startswith("web-01#")]) == 2
    assert all(v["uuid"] and v["host"] in ("host-a", "host-b") for v in doc["vms"])


def test_live_fleet_gives_planning_and_cost_views(synced: Inventory) -> None:
    snap = load_fleet_source(None, True, lambda: synced)
    assert snap.origin is FleetOrigin.live and snap.notices == ()
    assert [v.name for v in snap.fleet.vms] == [v.name for v in snap.vms]
    assert {v.uuid for v in snap.vms} == {v.uuid for v in synced.list_vms().items} - {
        v.uuid for v in synced.list_vms().items if v.is_template
    }
    running = {v.name for v in snap.vms if v.state.value in ("running", "paused")}
    assert running == {v.name for v in snap.fleet.vms if v.running}


def test_exported_file_reads_back_as_the_live_fleet(synced: Inventory, tmp_path: Path) -> None:
    for name in ("fleet.yaml", "fleet.json"):
        path = write_fleet_file(synced, tmp_path / name)
        from_file, live = read_fleet_file(path), live_fleet(synced)
        assert from_file.notices == ()
        assert from_file.fleet == live.fleet
        assert (from_file.vms, from_file.hosts, from_file.volumes) == (
            live.vms,
            live.hosts,
            live.volumes,
        )


def _run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CORRAL_HOME": str(home), "CORRAL_NODE_DIR": str(home.parent)}
    env.pop("CORRAL_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "corral", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@pytest.mark.slow
def test_live_inventory_end_to_end(tmp_path: Path) -> None:
    nodes = tmp_path / "nodes"
    shutil.copytree(NODES, nodes)
    home = migrated_home(tmp_path / "home")
    assert _run(home, "hosts", "add", "host-a", f"test://{nodes / 'host-a.xml'}").returncode == 0
    assert _run(home, "sync").returncode == 0
    ha = _run(home, "ha", "check", "--live", "--policy", "slots", "--output", "json")
    assert ha.returncode == 0, ha.stderr
    report = json.loads(ha.stdout)
    assert set(report["slots_per_host"]) == {"host-a"}
    plan = _run(home, "plan", "consolidate", "--live", "--mode", "heuristic", "--output", "json")
    assert plan.returncode == 0, plan.stderr
    assert json.loads(plan.stdout)["active_hosts_after"] == 1
    both = _run(home, "ha", "check", "--live", "-f", "x.yaml")
    assert both.returncode == 2 and "exactly one" in both.stderr
    # the exported fleet file plans exactly like the live inventory
    exported = _run(home, "export", str(tmp_path / "out"), "--format", "fleet")
    assert exported.returncode == 0, exported.stderr
    fleet_file = Path(exported.stdout.strip())
    again = _run(home, "ha", "check", "-f", str(fleet_file), "--policy", "slots", "-o", "json")
    assert again.returncode == 0 and again.stderr == "", again.stderr
    assert json.loads(again.stdout) == report
