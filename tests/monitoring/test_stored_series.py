"""Anomalies and forecasts of a stored series (--vm NAME --metric M) from a real DuckDB store."""

from __future__ import annotations

import csv
import io
import shutil
import time
from pathlib import Path

from typer.testing import CliRunner

from corral.cli.main import app as cli_app
from corral.errors import ValidationError
from corral.metrics.replay import backfill
from corral.metrics.store import DuckDBStore

UUID = "00000000-0000-0000-0000-0000000000a1"


def _filled(shared_data: Path, tmp_path: Path) -> str:
    path = tmp_path / "m.duckdb"
    traces = tmp_path / "traces"
    traces.mkdir()
    shutil.copy(shared_data / "bitbrains-rnd" / "rnd" / "2013-7" / "5.csv.gz", traces)
    store = DuckDBStore(path)
    backfill(store, [(UUID, "host-0", 2, 2048)], traces, days=2, end=int(time.time()), seed=3)
    store.close()
    return f"duckdb://{path}"


def test_stored_vm_series_gets_anomalies_and_a_forecast(shared_data: Path, tmp_path: Path) -> None:
    url = _filled(shared_data, tmp_path)
    run = CliRunner().invoke
    common = ["--vm", UUID, "--metric", "cpu_pct", "--since", "-3d", "--store", url]
    r = run(cli_app, ["metrics", "anomalies", *common, "-o", "csv"])
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(io.StringIO(r.output)))
    assert len(rows) > 400  # two days of 5-minute buckets (gaps included as empty values)
    assert all(0.0 <= float(row["anomaly_score"]) <= 1.0 for row in rows)
    r = run(
        cli_app, ["metrics", "forecast", *common, "--horizon", "24h", "--step", "1h", "-o", "csv"]
    )
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(io.StringIO(r.output)))
    assert len(rows) == 24
    assert all(float(x["lower"]) <= float(x["forecast"]) <= float(x["upper"]) for x in rows)


def test_neither_file_nor_series_is_refused(tmp_path: Path) -> None:
    r = CliRunner().invoke(cli_app, ["metrics", "anomalies", "-o", "csv"])
    assert isinstance(r.exception, ValidationError) and r.exception.exit_code == 2
    assert "--csv FILE or --vm" in str(r.exception)
