"""The one fleet format (corral-fleet/1) and the two old formats it replaces."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from corral.cli.main import app
from corral.engines.planning import PowerState, Protection, load_fleet
from corral.engines.sprawl.inventory_file import load_inventory
from corral.errors import ValidationError
from corral.services.fleet import FleetOrigin, parse_fleet_document, read_fleet_file

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

DOC = {
    "format": "corral-fleet/1",
    "now": "2026-03-01T00:00:00Z",
    "settings": {"cpu_allocation_ratio": 2.0},
    "hosts": [
        {"name": "h1", "cores": 8, "cpu_mhz": 2400, "memory_mib": 32768, "licences": ["win-dc"]},
        {"name": "h2", "cores": 4, "cpu_mhz": 2000, "memory_mib": 16384, "x-rack": "r2"},
    ],
    "vms": [
        {"name": "db", "uuid": "u-db", "host": "h1", "vcpus": 4, "memory_mib": 8192,
         "protection": "replicated", "anti_affinity": ["sql"], "owner": "alice",
         "disks": [{"path": "/p/db.qcow2", "size_gb": 100}], "os": "windows-server-2022"},
        {"name": "web", "host": "h2", "vcpus": 2, "memory_mib": 2048, "state": "paused"},
        {"name": "old", "host": "h2", "vcpus": 1, "memory_mib": 512, "state": "suspended"},
        {"name": "new", "vcpus": 1, "memory_mib": 512},
    ],
    "volumes": [{"path": "/p/orphan.qcow2", "size_gb": 20, "host": "h1"}],
}  # fmt: skip


def test_one_document_gives_both_views() -> None:
    snap = parse_fleet_document(DOC, "doc")
    assert snap.origin is FleetOrigin.document and snap.notices == ()
    db = snap.fleet.vm("db")
    assert db.protection is Protection.replicated and db.anti_affinity == ("sql",)
    assert snap.fleet.settings.cpu_allocation_ratio == 2.0
    assert snap.fleet.vm("new").host is None
    # paused holds its host's capacity, suspended does not
    assert snap.fleet.vm("web").state is PowerState.running
    assert snap.fleet.vm("old").state is PowerState.shutoff
    records = {v.name: v for v in snap.vms}
    assert records["db"].uuid == "u-db" and records["web"].uuid == "web"
    assert records["db"].owner == "alice" and records["db"].disk_gb == 100
    assert records["old"].state.value == "suspended"
    hosts = {h.name: h for h in snap.hosts}
    assert hosts["h1"].licences == ("win-dc",) and hosts["h2"].core_mhz == 2000
    assert snap.volumes[0].path == "/p/orphan.qcow2"
    assert snap.now is not None and snap.now.tzinfo is not None


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda d: d["vms"][0].update(memroy_mib=1), "vms[0]: unknown key 'memroy_mib'"),
        (lambda d: d["hosts"][1].update(cpus=3), "hosts[1]: unknown key 'cpus'"),
        (lambda d: d.update(fleet=[]), "unknown key 'fleet'"),
        (lambda d: d.update(format="corral-fleet/9"), "'corral-fleet/9' is unknown"),
        (lambda d: d["vms"][1].update(state="asleep"), "vms[1].state must be one of"),
        (lambda d: d["vms"][2].update(vcpus=0), "vms[2].vcpus must be a positive integer"),
        (lambda d: d["vms"][0].update(host="h9"), "'h9' is not a host"),
    ],
)
def test_mistakes_are_named(change: object, words: str) -> None:
    doc = json.loads(json.dumps(DOC))
    change(doc)  # type: ignore[operator]
    with pytest.raises(ValidationError, match=re.escape(words)):
        parse_fleet_document(doc, "doc")


def _old_planning_file(tmp_path: Path) -> Path:
    text = (FIXTURES / "fleets" / "small_cluster.yaml").read_text()
    path = tmp_path / "old.yaml"
    path.write_text(text.replace("format: corral-fleet/1\n", "", 1))
    return path


def test_old_planning_file_is_read_with_a_notice(tmp_path: Path) -> None:
    old = _old_planning_file(tmp_path)
    snap = read_fleet_file(old)
    assert snap.fleet == load_fleet(FIXTURES / "fleets" / "small_cluster.yaml")
    (notice,) = snap.notices
    assert "old planning fleet file" in notice and "corral-fleet/1" in notice
    assert len(snap.vms) == len(snap.fleet.vms) and snap.vms[0].uuid == snap.vms[0].name


def test_old_inventory_file_is_read_with_a_notice() -> None:
    path = FIXTURES / "sprawl" / "cost_inventory.yaml"
    snap = read_fleet_file(path)
    old = load_inventory(path)
    assert (snap.vms, snap.hosts, snap.volumes, snap.now) == (
        old.vms,
        old.hosts,
        old.volumes,
        old.now,
    )
    assert "old cost/sprawl inventory file" in snap.notices[0]
    assert snap.fleet.hosts == ()  # its hosts carry no CPU speed: nothing to plan on


def test_old_inventory_with_cpu_speed_plans(tmp_path: Path) -> None:
    path = tmp_path / "inv.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "hosts": [{"name": "h1", "cores": 4, "memory_mib": 8192, "core_mhz": 2000}],
                "vms": [{"uuid": "a", "name": "a", "host": "h1", "vcpus": 2, "memory_mib": 1024}],
            }
        )
    )
    snap = read_fleet_file(path)
    assert snap.fleet.host("h1").cpu_mhz == 2000 and snap.fleet.vm("a").host == "h1"


def test_cli_prints_the_deprecation_on_stderr_only(tmp_path: Path) -> None:
    old = _old_planning_file(tmp_path)
    result = CliRunner().invoke(
        app, ["plan", "consolidate", "-f", str(old), "--mode", "heuristic", "-o", "json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["method"]
    assert result.stderr.count("\n") == 1 and "deprecated" in result.stderr
