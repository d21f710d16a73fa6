"""On the demo fleet (real inventory, 15 days of replayed Bitbrains history): the report's
chunked analysis equals today's whole-fleet run, and the settings reach the report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.config import load_settings
from corral.engines.costing import load_cost_model
from corral.engines.sprawl import Category, analyse
from corral.inventory.service import Inventory
from corral.metrics.store import open_store
from corral.services.records import live_records
from corral.services.sprawl import AnalysisRun, live_analysis
from tests.scale.fleet import per_vm_batch

DAYS = 15


def corral(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "CORRAL_HOME": str(home), **env}
    full.pop("CORRAL_DATABASE_URL", None)
    full.pop("CORRAL_METRICS_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "corral", *args],
        capture_output=True,
        text=True,
        env=full,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("demo") / "home"
    args = ("demo", "--no-serve", "--vms", "20", "--hosts", "2", "--history-days", str(DAYS))
    made = corral(home, *args, "-o", "json")
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["metrics"]["samples"] > 0
    yield home


def test_the_demo_fleet_in_chunks_equals_todays_whole_fleet_run(home: Path) -> None:
    settings = load_settings(env={"CORRAL_HOME": str(home)})
    inv = Inventory.from_settings(settings)
    store = open_store(settings.metrics_url)
    model = load_cost_model()
    now = inv.clock()
    fleet = live_records(inv, now)
    vms, hosts = list(fleet.vms), list(fleet.hosts)
    metrics = per_vm_batch(store, vms, hosts, fleet, DAYS)
    reference = analyse(vms, now, model, hosts=hosts, volumes=fleet.volumes, metrics=metrics)
    assert Category.idle in {f.category for f in reference.findings}
    assert any(r.oversized for r in reference.rightsizing)
    for size in (1, 7, len(vms)):
        run = AnalysisRun(chunk_size=size)
        assert live_analysis(inv, store, model, days=DAYS, now=now, run=run) == reference
    store.close()


def test_the_report_takes_chunk_size_and_step_from_the_settings(home: Path) -> None:
    hourly = corral(
        home,
        "sprawl",
        "report",
        "--days",
        str(DAYS),
        "-o",
        "json",
        CORRAL_ANALYSIS_CHUNK="3",
        CORRAL_ANALYSIS_STEP="3600",
    )
    assert hourly.returncode == 0, hourly.stderr
    inv = Inventory.from_settings(load_settings(env={"CORRAL_HOME": str(home)}))
    assert json.loads(hourly.stdout)["summary"]["vms"] == len(live_records(inv).vms) > 0
    wrong = corral(home, "sprawl", "report", "-o", "json", CORRAL_ANALYSIS_STEP="600")
    assert wrong.returncode == 2
    assert "analysis_step_s must be one of 300, 3600, 86400" in wrong.stderr
    assert "Traceback" not in wrong.stderr
