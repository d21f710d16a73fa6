"""``corral sim``: JSON contract, policy listing, one-sentence errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from corral.cli.main import app

runner = CliRunner()
KEYS = {"energy_kwh", "migrations", "slatah_pct", "pdm_pct", "slav", "esv"}
KEYS |= {"energy_lower_bound_kwh", "day", "policy"}


def test_consolidate_prints_the_contract_keys(planetlab_dir: Path, order_dir: Path) -> None:
    args = ["sim", "consolidate", "--planetlab-dir", str(planetlab_dir), "--day", "20110306"]
    args += ["--order-file", str(order_dir / "20110306.txt"), "--policy", "corral"]
    result = runner.invoke(app, [*args, "--output", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data.keys() >= KEYS
    assert data["day"] == "20110306"
    assert data["policy"] == "corral"
    assert data["energy_kwh"] > data["energy_lower_bound_kwh"] > 0


def test_policies_lists_parameters() -> None:
    result = runner.invoke(app, ["sim", "policies", "--output", "json"])
    assert result.exit_code == 0
    rows = {r["policy"]: r for r in json.loads(result.output)}
    assert rows["lr-mmt"]["parameters"] == {"safety": 1.2}
    assert "window" in rows["corral"]["parameters"]


def test_unknown_policy_is_one_sentence_and_status_3(planetlab_dir: Path) -> None:
    code = "from corral.cli.main import run; run()"
    args = ["sim", "consolidate", "--planetlab-dir", str(planetlab_dir), "--policy", "nope"]
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    assert done.returncode == 3  # NotFoundError: no such policy
    assert "unknown policy" in done.stderr
    assert "Traceback" not in done.stderr
