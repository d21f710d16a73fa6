"""Read real utilization traces (PlanetLab, Bitbrains) onto a regular 5-minute grid.

Both loaders validate a whole file before returning anything; a malformed file
raises ValidationError naming the file and line, so a caller that loads all
its traces first ingests nothing half-way.

* PlanetLab (CoMon, as shipped with CloudSim): one file per VM and day, 288
  integer CPU percentages. Files with the same name on several days are one
  VM's days, concatenated in date order.
* Bitbrains GWA-T-12: one ``;``-separated CSV (optionally gzipped) per VM and
  month, irregular timestamps in epoch seconds; averaged into 300 s buckets,
  empty buckets carry the previous value. Months of the same VM are joined.
"""

from __future__ import annotations

import gzip
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from corral.errors import ValidationError
from corral.metrics.model import FloatArray

STEP_S = 300
TraceFormat = Literal["auto", "planetlab", "bitbrains"]
_DAY_DIR = re.compile(r"^\d{8}$")
_KIB = 1024.0
_BB_FIELDS = 11


@dataclass(frozen=True)
class Trace:
    """One VM's utilization on a 300 s grid: metric name -> values (same length)."""

    name: str
    columns: dict[str, FloatArray]

    def __len__(self) -> int:
        return len(next(iter(self.columns.values())))


def _bad(path: Path, line: int, why: str) -> ValidationError:
    return ValidationError(f"trace file {path}, line {line}: {why}; fix or remove the file.")


# -- PlanetLab -------------------------------------------------------------------
def planetlab_files(folder: Path) -> dict[str, list[Path]]:
    """Trace name -> its day files in date order (folder: the set, or one day)."""
    days = sorted(p for p in folder.iterdir() if p.is_dir() and _DAY_DIR.match(p.name))
    day_dirs = days or [folder]
    out: dict[str, list[Path]] = defaultdict(list)
    for day in day_dirs:
        for f in sorted(day.iterdir()):
            if f.is_file() and not f.name.startswith(".") and f.suffix not in (".txt", ".md"):
                out[f.name].append(f)
    return dict(out)


def read_planetlab_file(path: Path) -> FloatArray:
    lines = path.read_text(encoding="ascii", errors="replace").split()
    if not lines:
        raise _bad(path, 1, "the file is empty, expected one CPU percentage per line")
    try:
        values = np.array(lines, dtype=np.int64)
    except ValueError:
        for i, token in enumerate(lines, 1):
            if not token.isdigit():
                raise _bad(path, i, f"{token[:40]!r} is not an integer CPU percentage") from None
        raise
    out_of_range = np.flatnonzero((values < 0) | (values > 100))
    if out_of_range.size:
        i = int(out_of_range[0])
        raise _bad(path, i + 1, f"{values[i]} is outside 0..100 percent")
    return values.astype(np.float64)


def load_planetlab(name: str, files: Sequence[Path]) -> Trace:
    cpu = np.concatenate([read_planetlab_file(f) for f in files])
    return Trace(name, {"cpu_pct": cpu})


# -- Bitbrains -------------------------------------------------------------------
def bitbrains_files(folder: Path) -> dict[str, list[Path]]:
    """VM number -> its monthly files, in month order."""
    out: dict[str, list[Path]] = defaultdict(list)
    for f in sorted(folder.rglob("*.csv*")):
        if f.is_file() and (f.name.endswith(".csv") or f.name.endswith(".csv.gz")):
            out[f.name.split(".")[0]].append(f)
    return dict(out)


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    if path.name.endswith(".gz"):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise _bad(path, 1, f"not a readable gzip file ({exc})") from None
    return raw.decode("utf-8", errors="replace")


def read_bitbrains_file(path: Path) -> np.ndarray[tuple[int, int], np.dtype[np.float64]]:
    """The numeric rows of one file, shape (rows, 11)."""
    lines = _read_text(path).splitlines()
    if not lines or "CPU usage [%]" not in lines[0]:
        raise _bad(path, 1, "expected the Bitbrains header line (Timestamp [ms];\tCPU cores;...)")
    body = [ln for ln in lines[1:] if ln.strip()]
    if not body:
        raise _bad(path, 2, "the file has a header but no rows")
    tokens = ";".join(body).split(";")
    try:
        flat = np.array(tokens, dtype=np.float64)
    except ValueError:
        flat = None
    if flat is None or flat.size != len(body) * _BB_FIELDS:
        _find_bad_row(path, body)
    assert flat is not None
    rows = flat.reshape(len(body), _BB_FIELDS)
    if not np.isfinite(rows).all():
        bad = int(np.flatnonzero(~np.isfinite(rows).all(axis=1))[0])
        raise _bad(path, bad + 2, "a value is not a finite number")
    return rows


def _find_bad_row(path: Path, body: list[str]) -> None:
    for i, line in enumerate(body, 2):
        fields = line.split(";")
        if len(fields) != _BB_FIELDS:
            raise _bad(path, i, f"expected {_BB_FIELDS} fields separated by ';', got {len(fields)}")
        for field in fields:
            try:
                float(field)
            except ValueError:
                raise _bad(path, i, f"{field.strip()[:40]!r} is not a number") from None
    raise _bad(path, 2, "the rows could not be read as numbers")


def _to_grid(ts: FloatArray, values: FloatArray) -> FloatArray:
    """Mean per 300 s bucket from the first timestamp; empty buckets repeat the previous one."""
    idx = ((ts - ts.min()) // STEP_S).astype(np.int64)
    n = int(idx.max()) + 1
    sums = np.bincount(idx, weights=values, minlength=n)
    counts = np.bincount(idx, minlength=n)
    filled = counts > 0
    pos = np.where(filled, np.arange(n), 0)
    np.maximum.accumulate(pos, out=pos)
    mean = np.divide(sums, counts, out=np.zeros(n), where=filled)
    return mean[pos]


def load_bitbrains(name: str, files: Sequence[Path]) -> Trace:
    rows = np.concatenate([read_bitbrains_file(f) for f in files])
    ts = rows[:, 0]
    mem_cap, mem_use = rows[:, 5], rows[:, 6]
    mem_pct = np.divide(100.0 * mem_use, mem_cap, out=np.zeros_like(mem_use), where=mem_cap > 0)
    raw = {
        "cpu_pct": np.clip(rows[:, 4], 0.0, 100.0),
        "mem_used_pct": np.clip(mem_pct, 0.0, 100.0),
        "disk_read_bytes_per_s": rows[:, 7] * _KIB,
        "disk_write_bytes_per_s": rows[:, 8] * _KIB,
        "net_rx_bytes_per_s": rows[:, 9] * _KIB,
        "net_tx_bytes_per_s": rows[:, 10] * _KIB,
    }
    return Trace(name, {m: _to_grid(ts, v) for m, v in raw.items()})


# -- either ----------------------------------------------------------------------
def detect_format(folder: Path) -> Literal["planetlab", "bitbrains"]:
    if not folder.is_dir():
        raise ValidationError(
            f"trace folder {folder} does not exist; give a PlanetLab or Bitbrains folder."
        )
    if next(iter(folder.rglob("*.csv*")), None) is not None:
        return "bitbrains"
    return "planetlab"


def trace_files(folder: Path, fmt: TraceFormat = "auto") -> tuple[str, dict[str, list[Path]]]:
    """The format and the trace name -> files map of a folder."""
    kind = detect_format(folder) if fmt == "auto" else fmt
    files = bitbrains_files(folder) if kind == "bitbrains" else planetlab_files(folder)
    if not files:
        raise ValidationError(f"no {kind} trace files found under {folder}.")
    return kind, files


def load_traces(kind: str, files: dict[str, list[Path]], names: Iterable[str]) -> dict[str, Trace]:
    """Load and validate the named traces; raises before returning anything if one is bad."""
    load = load_bitbrains if kind == "bitbrains" else load_planetlab
    return {n: load(n, files[n]) for n in dict.fromkeys(names)}
