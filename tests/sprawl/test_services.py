"""The sprawl and cost services: typed results, and the CLI shows exactly what they return."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from corral.cli.main import app
from corral.engines.costing import CostModel, Dimension
from corral.engines.sprawl import Category, VMState
from corral.engines.sprawl.inventory_file import load_inventory
from corral.errors import ValidationError
from corral.services import cost, sprawl
from corral.services.records import FleetRecords

runner = CliRunner()


def cli_json(*args: str) -> object:
    result = runner.invoke(app, [*args, "--output", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def fleet() -> FleetRecords:
    from tests.sprawl.conftest import FIXTURES

    return load_inventory(FIXTURES / "cost_inventory.yaml")


def _model_args(fixtures: Path) -> list[str]:
    return ["--cost-model", str(fixtures / "costmodels" / "hand_checked.yaml")]


def test_cost_per_vm_is_typed_and_the_cli_shows_it(
    fixtures: Path, fleet: FleetRecords, hand_model: CostModel
) -> None:
    result = cost.cost_per_vm(fleet, hand_model)
    assert result.currency == "EUR"
    assert all(isinstance(v.state, VMState) for v in result.vms)
    by_name = {v.vm: v for v in result.vms}
    assert by_name["win-b"].lines.total == pytest.approx(66.0)
    assert result.total == pytest.approx(sum(v.lines.total for v in result.vms))
    rows = cli_json(
        "cost", "vm", "-i", str(fixtures / "cost_inventory.yaml"), *_model_args(fixtures)
    )
    assert isinstance(rows, list)
    assert [r["vm"] for r in rows] == [v.vm for v in result.vms]
    for row, line in zip(rows, result.vms, strict=True):
        assert row["state"] == line.state.value
        assert row["total"] == round(line.lines.total, 2)
        assert row["compute"] == round(line.lines.compute, 2)
        assert row["os_app_licences"] == round(line.lines.os_app_licences, 2)


def test_chargeback_service_equals_cli(
    fixtures: Path, fleet: FleetRecords, hand_model: CostModel
) -> None:
    result = cost.chargeback_by(fleet, hand_model, Dimension.owner)
    assert result.by is Dimension.owner
    totals = [r.lines.total for r in result.rows]
    assert totals == sorted(totals, reverse=True)
    assert sum(r.vms for r in result.rows) == len(fleet.vms)
    args = ["cost", "chargeback", "-i", str(fixtures / "cost_inventory.yaml"), "--by", "owner"]
    rows = cli_json(*args, *_model_args(fixtures))
    assert isinstance(rows, list)
    assert [(r["owner"], r["vms"], r["total"]) for r in rows] == [
        (r.key, r.vms, round(r.lines.total, 2)) for r in result.rows
    ]


def test_licences_service_equals_cli(
    fixtures: Path, fleet: FleetRecords, hand_model: CostModel
) -> None:
    result = cost.licence_compliance(fleet, hand_model)
    doc = cli_json(
        "cost", "licences", "-i", str(fixtures / "cost_inventory.yaml"), *_model_args(fixtures)
    )
    assert isinstance(doc, dict)
    assert [(u["product"], u["deployed"], u["status"]) for u in doc["usage"]] == [
        (u.product, u.deployed, u.status.value) for u in result.usage
    ]
    assert [s["monthly_saving"] for s in doc["suggestions"]] == [
        round(s.monthly_saving, 2) for s in result.suggestions
    ]
    assert {s.host for s in result.suggestions} == {"h1", "h3"}


def test_findings_service_equals_cli(fixtures: Path, hand_model: CostModel) -> None:
    path = fixtures / "detectors_inventory.yaml"
    result = sprawl.inventory_findings(load_inventory(path), hand_model)
    assert all(isinstance(f.category, Category) for f in result.findings)
    assert Category.idle not in {f.category for f in result.findings}
    rows = cli_json("sprawl", "findings", "-i", str(path), *_model_args(fixtures))
    assert isinstance(rows, list)
    found = [(r["subject"], r["category"], r["monthly"]) for r in rows if "monthly" in r]
    assert found == [
        (f.subject_name, f.category.value, round(f.monthly_cost_held, 2)) for f in result.findings
    ]
    undecided = [r["category"] for r in rows if "monthly" not in r]
    assert undecided == [f"insufficient:{i.detector}" for i in result.insufficient]


def test_scenario_service_equals_cli(default_model: CostModel) -> None:
    result = sprawl.scenario(default_model, vms=40, seed=5)
    assert result.summary.vms == 40 and result.seed == 5
    assert result.summary.waste_yearly == pytest.approx(12 * result.summary.waste_monthly, abs=0.1)
    doc = cli_json("sprawl", "scenario", "--vms", "40", "--seed", "5")
    assert isinstance(doc, dict)
    head = doc["summary"]
    assert head["waste_monthly"] == result.summary.waste_monthly
    assert head["fleet_monthly_cost"] == result.summary.fleet_monthly_cost
    assert head["reclaimable_vcpus"] == result.summary.reclaimable_vcpus
    assert [(c["category"], c["count"]) for c in doc["by_category"]] == [
        (t.category.value, t.count) for t in result.summary.categories
    ]
    assert [a["assumption"] for a in doc["assumptions"]] == [a.name for a in result.assumptions]


def test_bitbrains_service_equals_cli(shared_data: Path, default_model: CostModel) -> None:
    data = shared_data / "bitbrains-rnd"
    result = sprawl.bitbrains(data, default_model, limit=6)
    assert isinstance(result.window_start, datetime) and result.window_start < result.window_end
    assert result.summary.vms == 6
    doc = cli_json("sprawl", "bitbrains", "--data-dir", str(data), "--limit", "6")
    assert isinstance(doc, dict)
    assert doc["summary"]["idle_vms"] == result.summary.idle_vms == len(doc["findings"])
    assert doc["summary"]["waste_monthly"] == result.summary.waste_monthly
    assert doc["summary"]["oversized_cpu"] == result.summary.oversized_cpu
    assert doc["summary"]["window"].startswith(f"{result.window_start:%Y-%m-%d} .. ")


def test_detector_catalogue_equals_cli() -> None:
    rows = cli_json("sprawl", "detectors")
    assert isinstance(rows, list)
    catalogue = sprawl.detector_catalogue()
    assert [(r["detector"], r["parameter"]) for r in rows] == [
        (d.detector, d.parameter or "") for d in catalogue
    ]


def test_cost_commands_need_exactly_one_fleet(fixtures: Path) -> None:
    both = runner.invoke(app, ["cost", "vm", "-i", str(fixtures / "cost_inventory.yaml"), "--live"])
    assert isinstance(both.exception, ValidationError)
    neither = runner.invoke(app, ["cost", "vm"])
    assert isinstance(neither.exception, ValidationError)


def test_cost_reads_the_one_fleet_format(default_model: CostModel) -> None:
    """``-f`` takes the planning/HA fleet file too: the same records, the same prices."""
    from corral.services.fleet import read_fleet_file

    path = Path(__file__).resolve().parents[1] / "fixtures" / "fleets" / "small_cluster.yaml"
    records = read_fleet_file(path).records
    result = cost.cost_per_vm(records, default_model)
    rows = cli_json("cost", "vm", "-f", str(path))
    assert isinstance(rows, list) and len(rows) == len(records.vms) > 0
    assert [(r["vm"], r["total"]) for r in rows] == [
        (v.vm, round(v.lines.total, 2)) for v in result.vms
    ]
