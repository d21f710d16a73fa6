"""Every cost and sprawl command prices with the settings' cost model (CORRAL_COST_MODEL).

Real subprocesses on a real demo home: the same command run with the
environment variable must give what ``--cost-model`` gives for that file, and
differ from the shipped default.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.sprawl.conftest import FIXTURES

HAND = FIXTURES / "costmodels" / "hand_checked.yaml"  # EUR, its own prices


def run(home: Path, *args: str, model: Path | None = None) -> Any:
    env = {**os.environ, "CORRAL_HOME": str(home)}
    for name in ("CORRAL_DATABASE_URL", "CORRAL_METRICS_URL", "CORRAL_COST_MODEL"):
        env.pop(name, None)
    if model is not None:
        env["CORRAL_COST_MODEL"] = str(model)
    proc = subprocess.run(
        [sys.executable, "-m", "corral", *args, "-o", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo fleet priced by the settings' model: the demo honours it too."""
    home = tmp_path_factory.mktemp("costhome")
    args = ("demo", "--no-serve", "--vms", "20", "--hosts", "2", "--history-days", "0")
    info = run(home, *args, model=HAND)
    assert info["sprawl"]["currency"] == "EUR"
    return home


def _totals(rows: list[dict[str, Any]]) -> list[tuple[str, float]]:
    return [(str(r.get("vm") or r.get("department")), r["total"]) for r in rows]


@pytest.mark.parametrize(
    "command",
    [("cost", "vm", "--live"), ("cost", "chargeback", "--live")],
)
def test_cost_commands_price_with_the_setting(demo_home: Path, command: tuple[str, ...]) -> None:
    by_setting = _totals(run(demo_home, *command, model=HAND))
    by_flag = _totals(run(demo_home, *command, "--cost-model", str(HAND)))
    by_default = _totals(run(demo_home, *command))
    assert by_setting == by_flag
    assert by_setting != by_default and len(by_setting) == len(by_default) > 0


def test_licences_use_the_settings_products(demo_home: Path) -> None:
    by_setting = run(demo_home, "cost", "licences", "--live", model=HAND)
    by_flag = run(demo_home, "cost", "licences", "--live", "--cost-model", str(HAND))
    by_default = run(demo_home, "cost", "licences", "--live")
    assert by_setting == by_flag
    hand_products = {u["product"] for u in by_setting["usage"]}
    assert hand_products and hand_products != {u["product"] for u in by_default["usage"]}


def test_findings_and_report_price_with_the_setting(demo_home: Path) -> None:
    held = run(demo_home, "sprawl", "findings", "--live", model=HAND)
    held_flag = run(demo_home, "sprawl", "findings", "--live", "--cost-model", str(HAND))
    held_default = run(demo_home, "sprawl", "findings", "--live")
    money = [r.get("monthly") for r in held]
    assert money == [r.get("monthly") for r in held_flag]
    assert money != [r.get("monthly") for r in held_default] and any(money)
    report = run(demo_home, "sprawl", "report", model=HAND)["summary"]
    report_flag = run(demo_home, "sprawl", "report", "--cost-model", str(HAND))["summary"]
    report_default = run(demo_home, "sprawl", "report")["summary"]
    assert report["currency"] == "EUR" and report_default["currency"] == "USD"
    assert report["fleet_monthly_cost"] == report_flag["fleet_monthly_cost"]
    assert report["fleet_monthly_cost"] != report_default["fleet_monthly_cost"]


def test_scenario_and_bitbrains_price_with_the_setting(tmp_path: Path, shared_data: Path) -> None:
    scenario = ("sprawl", "scenario", "--vms", "20")
    ours = run(tmp_path, *scenario, model=HAND)["summary"]
    shipped = run(tmp_path, *scenario)["summary"]
    assert (ours["currency"], shipped["currency"]) == ("EUR", "USD")
    assert ours["fleet_monthly_cost"] != shipped["fleet_monthly_cost"]
    trace = ("sprawl", "bitbrains", "--data-dir", str(shared_data / "bitbrains-rnd"))
    ours = run(tmp_path, *trace, "--limit", "3", model=HAND)["summary"]
    shipped = run(tmp_path, *trace, "--limit", "3")["summary"]
    assert (ours["currency"], shipped["currency"]) == ("EUR", "USD")
    assert ours["fleet_monthly_cost"] != shipped["fleet_monthly_cost"]
