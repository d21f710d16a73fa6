"""``corral metrics forecast --csv FILE --start ISO --horizon 168h --step 1h --output csv``."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from corral.services.monitoring import read_series
from tests.monitoring.test_cli_anomalies import corral

START = datetime(2026, 3, 2, tzinfo=UTC)


def _history(tmp_path: Path, style: str) -> Path:
    lines = []
    for i in range(14 * 288):
        t = START - timedelta(days=14) + timedelta(minutes=5 * i)
        value = 50.0 + (30.0 if 9 <= t.hour < 17 else 0.0) + (i % 7)
        stamp = {
            "epoch": str(int(t.timestamp())),
            "iso": t.isoformat().replace("+00:00", "Z"),
            "nab": t.strftime("%Y-%m-%d %H:%M:%S"),
        }[style]
        lines.append(f"{stamp},{value}")
    path = tmp_path / f"{style}.csv"
    path.write_text("timestamp,value\n" + "\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("style", ["epoch", "iso", "nab"])
def test_every_timestamp_style_reads_to_the_same_series(tmp_path: Path, style: str) -> None:
    series = read_series(_history(tmp_path, style))
    assert series.times[0] == (START - timedelta(days=14)).timestamp()
    assert len(series.times) == 14 * 288


def test_one_row_per_step_with_an_interval(tmp_path: Path) -> None:
    done = corral(
        "metrics", "forecast", "--csv", str(_history(tmp_path, "iso")),
        "--start", "2026-03-02T00:00:00Z", "--horizon", "168h", "--step", "1h", "--output", "csv",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert list(rows[0].keys()) == ["timestamp", "forecast", "lower", "upper"]
    assert len(rows) == 168
    assert rows[0]["timestamp"] == "2026-03-02T00:00:00Z"
    assert rows[-1]["timestamp"] == "2026-03-08T23:00:00Z"
    for r in rows:
        assert float(r["lower"]) <= float(r["forecast"]) <= float(r["upper"])
    by_hour = {r["timestamp"][11:13]: float(r["forecast"]) for r in rows[:24]}
    assert by_hour["12"] > by_hour["03"] + 15  # the working-hours load is forecast


def test_history_after_the_start_only_is_refused_with_exit_2(tmp_path: Path) -> None:
    done = corral(
        "metrics", "forecast", "--csv", str(_history(tmp_path, "iso")),
        "--start", "2020-01-01T00:00:00Z", "--output", "csv",
    )  # fmt: skip
    assert done.returncode == 2 and "no samples before" in done.stderr
    assert "Traceback" not in done.stderr
