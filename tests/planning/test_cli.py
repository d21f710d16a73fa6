"""The CLI on fleet files, against golden outputs (regenerate: CORRAL_REGEN_GOLDEN=1)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from corral.cli.main import app
from corral.errors import NotFoundError, ValidationError

FLEETS = Path(__file__).resolve().parents[1] / "fixtures" / "fleets"
EXPECTED = FLEETS / "expected"
REGEN = os.environ.get("CORRAL_REGEN_GOLDEN") == "1"

GOLDEN: dict[str, list[str]] = {
    "guide-slots": ["ha", "check", "-f", "vsphere_guide.yaml", "--policy", "slots"],
    "guide-percentage": ["ha", "check", "-f", "vsphere_guide.yaml", "--policy", "percentage"],
    "guide-exact": ["ha", "check", "-f", "vsphere_guide.yaml", "--policy", "exact"],
    "guide-slots-growth": [
        "ha", "check", "-f", "vsphere_guide.yaml", "--policy", "slots",
        "--growth-per-month", "0.05", "--as-of", "2026-11-21",
    ],
    "small-exact-k2": ["ha", "check", "-f", "small_cluster.yaml", "--policy", "exact", "-k", "2"],
    "failover-hosts": [
        "ha", "check", "-f", "failover_hosts.yaml", "--policy", "failover-hosts", "-k", "2",
    ],
    "small-place": ["plan", "place", "-f", "small_cluster.yaml"],
    "small-place-new": [
        "plan", "place", "-f", "small_cluster.yaml", "--new", "big:16:1024", "--new", "x:2:2048",
        "--no-atomic",
    ],
    "small-consolidate": ["plan", "consolidate", "-f", "small_cluster.yaml", "--mode", "heuristic"],
    "small-evacuate": ["plan", "evacuate", "-f", "small_cluster.yaml", "--host", "h2"],
    "hotspot-rebalance": ["plan", "rebalance", "-f", "hotspot.yaml"],
    "small-whatif": [
        "plan", "whatif", "-f", "small_cluster.yaml", "--add", "3:2:4096", "--remove-host", "h6",
        "--reserve", "erp:2:2:2048",
    ],
    "small-forecast": [
        "plan", "forecast", "-f", "small_cluster.yaml", "--history", "history_small_cluster.csv",
    ],
}  # fmt: skip


def _run(args: list[str]) -> str:
    resolved = [str(FLEETS / a) if a.endswith((".yaml", ".csv")) else a for a in args]
    result = CliRunner().invoke(app, [*resolved, "--output", "json"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden(name: str) -> None:
    doc = json.loads(_run(GOLDEN[name]))
    path = EXPECTED / f"{name}.json"
    if REGEN:
        EXPECTED.mkdir(exist_ok=True)
        path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    assert path.exists(), f"missing golden file {path}; run with CORRAL_REGEN_GOLDEN=1"
    assert doc == json.loads(path.read_text())


def test_ha_check_contract_keys() -> None:
    slots = json.loads(_run(GOLDEN["guide-slots"]))
    assert isinstance(slots["tolerated_host_failures"], int)
    assert set(slots["slot"]) == {"cpu_mhz", "memory_mib"}
    assert slots["slots_per_host"] == {"H1": 4, "H2": 3, "H3": 3}
    pct = json.loads(_run(GOLDEN["guide-percentage"]))
    assert {"cpu_failover_capacity_pct", "memory_failover_capacity_pct"} <= set(pct)
    exact = json.loads(_run(GOLDEN["small-exact-k2"]))
    assert exact["vms_not_coming_back"] == ["hpc1"]


def test_table_output_runs() -> None:
    args = [str(FLEETS / "small_cluster.yaml")]
    for cmd in (
        ["ha", "check", "-f", *args],
        ["plan", "consolidate", "-f", *args, "--mode", "heuristic"],
    ):
        result = CliRunner().invoke(app, cmd)
        assert result.exit_code == 0, result.output
        assert "tolerated_host_failures" in result.output or "active_hosts_after" in result.output


def test_exact_consolidation_cli() -> None:
    doc = json.loads(_run(["plan", "consolidate", "-f", "small_cluster.yaml", "--mode", "exact"]))
    assert doc["method"] == "exact-cpsat" and doc["active_hosts_after"] == doc["lower_bound_hosts"]


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["ha", "check", "-f", "missing.yaml"], NotFoundError),
        (["ha", "check", "-f", "vsphere_guide.yaml", "--policy", "magic"], ValidationError),
        (["plan", "whatif", "-f", "vsphere_guide.yaml"], ValidationError),
        (["plan", "whatif", "-f", "vsphere_guide.yaml", "--add", "x:1"], ValidationError),
        (["plan", "evacuate", "-f", "vsphere_guide.yaml", "--host", "nope"], NotFoundError),
        (["plan", "place", "-f", "vsphere_guide.yaml"], ValidationError),
    ],
)
def test_errors_are_corral_errors(args: list[str], error: type[Exception]) -> None:
    resolved = [str(FLEETS / a) if a.endswith(".yaml") else a for a in args]
    result = CliRunner().invoke(app, resolved)
    assert isinstance(result.exception, error)
    assert str(result.exception).endswith(".")
