"""The sprawl and cost commands end to end on fixture files and a few real traces."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from corral.cli.main import app
from corral.errors import ConfigError

runner = CliRunner()


def _json(args: list[str]) -> object:
    result = runner.invoke(app, [*args, "--output", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_cost_vm_json(fixtures: Path) -> None:
    model = str(fixtures / "costmodels" / "hand_checked.yaml")
    rows = _json(["cost", "vm", "-i", str(fixtures / "cost_inventory.yaml"), "--cost-model", model])
    assert isinstance(rows, list)
    assert {r["vm"]: r["total"] for r in rows}["win-b"] == 66


def test_cost_chargeback_csv(fixtures: Path) -> None:
    model = str(fixtures / "costmodels" / "hand_checked.yaml")
    args = ["cost", "chargeback", "-i", str(fixtures / "cost_inventory.yaml"), "--by", "owner"]
    result = runner.invoke(app, [*args, "--cost-model", model, "--output", "csv"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("owner,vms,")
    assert any(line.startswith("carol,3,") and line.endswith(",171.0") for line in lines)


def test_cost_licences_json(fixtures: Path) -> None:
    model = str(fixtures / "costmodels" / "hand_checked.yaml")
    doc = _json(
        ["cost", "licences", "-i", str(fixtures / "cost_inventory.yaml"), "--cost-model", model]
    )
    assert isinstance(doc, dict)
    assert {s["host"] for s in doc["suggestions"]} == {"h1", "h3"}


def test_sprawl_findings_table(fixtures: Path) -> None:
    result = runner.invoke(
        app, ["sprawl", "findings", "-i", str(fixtures / "detectors_inventory.yaml")]
    )
    assert result.exit_code == 0, result.output
    assert "powered_off" in result.stdout and "insufficient:snapshot_sprawl" in result.stdout


def test_sprawl_scenario_json() -> None:
    doc = _json(["sprawl", "scenario", "--vms", "40", "--seed", "5"])
    assert isinstance(doc, dict)
    assert doc["summary"]["vms"] == 40 and doc["assumptions"]


def test_sprawl_bitbrains_json(shared_data: Path) -> None:
    doc = _json(
        ["sprawl", "bitbrains", "--data-dir", str(shared_data / "bitbrains-rnd"), "--limit", "6"]
    )
    assert isinstance(doc, dict)
    assert doc["summary"]["vms"] == 6
    assert doc["summary"]["idle_vms"] == len(doc["findings"])


def test_bad_cost_model_is_a_config_error(fixtures: Path) -> None:
    bad = fixtures / "costmodels" / "bad_negative.yaml"
    result = runner.invoke(
        app, ["cost", "vm", "-i", str(fixtures / "cost_inventory.yaml"), "--cost-model", str(bad)]
    )
    assert isinstance(result.exception, ConfigError)


def test_detectors_listing() -> None:
    rows = _json(["sprawl", "detectors"])
    assert isinstance(rows, list)
    assert any(
        r["detector"] == "idle" and r["parameter"] == "cpu_mhz_max" and r["default"] == 100
        for r in rows
    )
