"""Anomalies and forecasts of one series, read from a ``timestamp,value`` file or the store.

The engines take plain numbers; this service turns a file (or a stored series) into them and
their answers into typed rows. A file is CSV with the header ``timestamp,value``: timestamps
as ``YYYY-MM-DD HH:MM:SS``, ISO 8601 (UTC when no zone is given) or epoch seconds, in time
order (equal timestamps are kept, each its own sample); values finite numbers. Anything
else is refused with the line that is wrong.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from corral.engines.anomaly.detector import DEFAULT_CONFIG, DetectorConfig, detect
from corral.errors import ValidationError
from corral.metrics.timeparse import iso

HEADER = ("timestamp", "value")


@dataclass(frozen=True)
class Series:
    labels: tuple[str, ...]  # each row's timestamp as written, echoed back in answers
    times: tuple[float, ...]  # epoch seconds
    values: tuple[float, ...]


@dataclass(frozen=True)
class AnomalyRow:
    timestamp: str
    value: float
    anomaly_score: float
    alert: int


def parse_timestamp(text: str) -> float:
    """``YYYY-MM-DD HH:MM:SS``, ISO 8601 (``Z`` or an offset; UTC without) or epoch seconds."""
    raw = text.strip()
    try:
        return float(raw) if raw.replace(".", "", 1).isdigit() else _iso(raw)
    except ValueError:
        raise ValueError(f"{text!r} is not a timestamp") from None


def _iso(raw: str) -> float:
    dt = datetime.fromisoformat(raw.replace("Z", "+00:00") if raw.endswith("Z") else raw)
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def parse_series(text: str, source: str = "the file") -> Series:
    rows = csv.reader(io.StringIO(text))
    header = next(rows, None)
    if header is None or tuple(h.strip().lower() for h in header) != HEADER:
        raise ValidationError(f"{source} must start with the header 'timestamp,value'.")
    labels: list[str] = []
    times: list[float] = []
    values: list[float] = []
    for line, row in enumerate(rows, start=2):
        if not row:
            continue
        t, v = _row(row, line, source)
        if times and t < times[-1]:
            raise ValidationError(
                f"{source} line {line}: timestamp {row[0]!r} is before the one above it; "
                "sort the rows by time."
            )
        labels.append(row[0].strip())
        times.append(t)
        values.append(v)
    if not times:
        raise ValidationError(f"{source} has no data rows; give at least one 'timestamp,value'.")
    return Series(tuple(labels), tuple(times), tuple(values))


def _row(row: list[str], line: int, source: str) -> tuple[float, float]:
    if len(row) != 2:
        raise ValidationError(f"{source} line {line}: expected 'timestamp,value', got {row!r}.")
    try:
        t = parse_timestamp(row[0])
        v = float(row[1])
    except ValueError:
        raise ValidationError(
            f"{source} line {line}: {','.join(row)!r} is not 'timestamp,value' "
            "(time as YYYY-MM-DD HH:MM:SS, ISO 8601 or epoch seconds; value a number)."
        ) from None
    if not math.isfinite(v):
        raise ValidationError(f"{source} line {line}: value {row[1]!r} is not a finite number.")
    return t, v


def read_series(path: Path) -> Series:
    try:
        text = path.read_text(encoding="utf-8-sig")  # a spreadsheet may add a BOM
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc.strerror}; check the path.") from None
    except UnicodeDecodeError:
        raise ValidationError(f"cannot read {path}: it is not UTF-8 text.") from None
    return parse_series(text, str(path))


def anomalies(series: Series, config: DetectorConfig = DEFAULT_CONFIG) -> list[AnomalyRow]:
    """One row per sample: the detector's score and whether Corral would alert on it."""
    verdicts = detect(series.values, config)
    return [
        AnomalyRow(label, value, round(v.score, 6), int(v.alert))
        for label, value, v in zip(series.labels, series.values, verdicts, strict=True)
    ]


def from_points(points: list[tuple[int, float | None]]) -> Series:
    """A stored series (bucket start, value or None for a gap) as a Series; gaps are NaN."""
    if not points:
        raise ValidationError("no stored samples in that range; widen --start/--end.")
    return Series(
        tuple(iso(ts) for ts, _ in points),
        tuple(float(ts) for ts, _ in points),
        tuple(math.nan if v is None else float(v) for _, v in points),
    )


@dataclass(frozen=True)
class ForecastRow:
    timestamp: str
    forecast: float
    lower: float
    upper: float


def default_start(series: Series, step: int) -> int:
    """The first whole step after the last sample: where a forecast naturally begins."""
    return (int(series.times[-1]) // step + 1) * step


def forecast(series: Series, start: int, horizon: int, step: int) -> list[ForecastRow]:
    """The mean of each step from ``start`` over ``horizon``, with an 80 % band."""
    from corral.engines.forecast import forecast as profile_forecast

    steps = profile_forecast(series.times, series.values, start, horizon, step)
    return [
        ForecastRow(iso(int(s.time)), round(s.forecast, 4), round(s.lower, 4), round(s.upper, 4))
        for s in steps
    ]
