"""``corral metrics anomalies --csv FILE --output csv``: the contract later checks rely on."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from corral.engines.anomaly.detector import detect
from corral.errors import ValidationError
from corral.services.monitoring import anomalies, parse_series, read_series

NAB_FILE = "nab-aws/data/realKnownCause/ec2_request_latency_system_failure.csv"


def corral(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "corral", *args],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=120,
    )


def test_every_input_row_comes_out_with_score_and_alert(shared_data: Path) -> None:
    path = shared_data / NAB_FILE
    done = corral("metrics", "anomalies", "--csv", str(path), "--output", "csv")
    assert done.returncode == 0, done.stderr
    out = list(csv.DictReader(io.StringIO(done.stdout)))
    rows = list(csv.DictReader(path.open()))
    assert list(out[0].keys()) == ["timestamp", "value", "anomaly_score", "alert"]
    assert [r["timestamp"] for r in out] == [r["timestamp"] for r in rows]
    assert [float(r["value"]) for r in out] == [float(r["value"]) for r in rows]
    assert all(0.0 <= float(r["anomaly_score"]) <= 1.0 for r in out)
    assert {r["alert"] for r in out} == {"0", "1"}
    engine = detect([float(r["value"]) for r in rows])  # the benchmark's alerts are the CLI's
    assert [int(r["alert"]) for r in out] == [int(v.alert) for v in engine]


def test_iso_timestamps_with_zone_are_accepted() -> None:
    lines = [f"2026-01-01T{h:02d}:00:00Z,{50.0 if h == 23 else 5.0}" for h in range(24)]
    series = parse_series("timestamp,value\n" + "\n".join(lines) + "\n")
    rows = anomalies(series)
    assert len(rows) == 24 and rows[-1].anomaly_score > 0.5
    assert rows[0].timestamp == "2026-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("", "header"),
        ("timestamp,value\n", "no data rows"),
        ("timestamp,value\n2026-01-01 00:00:00,abc\n", "line 2"),
        ("timestamp,value\nyesterday,1\n", "line 2"),
        ("timestamp,value\n2026-01-01 00:00:00,1,2\n", "line 2"),
        ("timestamp,value\n2026-01-01 00:00:00,inf\n", "finite"),
        ("timestamp,value\n2026-01-02 00:00:00,1\n2026-01-01 00:00:00,2\n", "sort"),
        ("time,v\n2026-01-01 00:00:00,1\n", "header"),
    ],
)
def test_bad_input_is_one_clear_sentence(body: str, says: str) -> None:
    with pytest.raises(ValidationError, match=says) as caught:
        parse_series(body, "f.csv")
    assert caught.value.exit_code == 2


def test_equal_timestamps_are_kept_as_separate_samples() -> None:
    series = parse_series("timestamp,value\n2026-01-01 00:00:00,1\n2026-01-01 00:00:00,2\n")
    assert series.values == (1.0, 2.0)


def test_unsorted_file_exits_2_with_the_sentence_and_no_output(tmp_path: Path) -> None:
    f = tmp_path / "bad.csv"
    f.write_text("timestamp,value\n2026-01-02 00:00:00,1\n2026-01-01 00:00:00,2\n")
    done = corral("metrics", "anomalies", "--csv", str(f), "--output", "csv")
    assert done.returncode == 2
    assert "line 3" in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == ""


def test_missing_file_is_refused_with_exit_2(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="cannot read") as caught:
        read_series(tmp_path / "nope.csv")
    assert caught.value.exit_code == 2
