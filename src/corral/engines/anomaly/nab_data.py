"""Read NAB's data files, label windows and published results (a trace reader, files in).

The folder is the shared ``nab-aws`` copy (see its README.txt): ``data/<folder>/<file>.csv``
with ``timestamp,value``, ``labels/combined_windows.json`` keyed ``<folder>/<file>.csv``, and
``reference_results/`` with the published per-file scores and numenta's per-row results.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from corral.errors import NotFoundError


@dataclass(frozen=True)
class NabFile:
    key: str  # "<folder>/<file>.csv", as in NAB's label files
    times: tuple[float, ...]
    values: tuple[float, ...]
    windows: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class PublishedScore:
    detector: str
    profile: str
    key: str
    threshold: float
    score: float
    tp: int
    tn: int
    fp: int
    fn: int


def nab_time(text: str) -> float:
    """NAB's ``YYYY-MM-DD HH:MM:SS[.ffffff]`` (UTC) -> epoch seconds."""
    return datetime.fromisoformat(text.strip()).replace(tzinfo=UTC).timestamp()


def _windows(root: Path) -> dict[str, list[list[str]]]:
    path = root / "labels" / "combined_windows.json"
    if not path.is_file():
        raise NotFoundError(f"no NAB label windows at {path}; pass the nab-aws folder.")
    data: dict[str, list[list[str]]] = json.loads(path.read_text())
    return data


def load_files(root: Path) -> list[NabFile]:
    """Every labelled file of the folder, in the label file's order."""
    out = []
    for key, spans in _windows(root).items():
        times, values = [], []
        with (root / "data" / key).open(newline="") as fh:
            for row in csv.DictReader(fh):
                times.append(nab_time(row["timestamp"]))
                values.append(float(row["value"]))
        windows = tuple((nab_time(a), nab_time(b)) for a, b in spans)
        out.append(NabFile(key, tuple(times), tuple(values), windows))
    return out


def reference_rows(root: Path, key: str, detector: str = "numenta") -> list[float]:
    """A published detector's per-row anomaly scores for one file."""
    folder, name = key.split("/")
    path = root / "reference_results" / detector / f"{folder}__{detector}_{name}"
    with path.open(newline="") as fh:
        return [float(row["anomaly_score"]) for row in csv.DictReader(fh)]


def published_scores(root: Path) -> list[PublishedScore]:
    path = root / "reference_results" / "per_file_scores_subset.csv"
    with path.open(newline="") as fh:
        return [
            PublishedScore(
                r["Detector"],
                r["Profile"],
                r["File"],
                float(r["Threshold"]),
                float(r["Score"]),
                int(r["TP"]),
                int(r["TN"]),
                int(r["FP"]),
                int(r["FN"]),
            )
            for r in csv.DictReader(fh)
        ]
