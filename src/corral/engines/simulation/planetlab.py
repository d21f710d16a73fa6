"""Read a day of PlanetLab traces (CoMon data as shipped with CloudSim) into a Workload.

This is the simulator's data adapter: it reads files, checks them, and hands the engine plain
arrays. CloudSim gave VM ``i`` the type ``i // ceil(n / 4)`` in the order Java's
``File.listFiles()`` returned the files; an order file (one name a line) reproduces that
order, otherwise names are sorted.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from corral.engines.simulation.model import Workload
from corral.errors import NotFoundError, ValidationError

SAMPLES_PER_DAY = 288


def list_days(planetlab_dir: Path) -> list[str]:
    """Day folders (YYYYMMDD) under a PlanetLab folder, sorted."""
    if not planetlab_dir.is_dir():
        raise NotFoundError(
            f"PlanetLab folder {planetlab_dir} does not exist; "
            "pass the folder that holds the day folders."
        )
    return sorted(p.name for p in planetlab_dir.iterdir() if p.is_dir() and p.name.isdigit())


def resolve_day_dir(planetlab_dir: Path, day: str | None) -> tuple[Path, str]:
    """The folder holding one day's trace files, and the day's name."""
    days = list_days(planetlab_dir)
    if not days:  # the folder is itself a day folder
        return planetlab_dir, day or planetlab_dir.name
    chosen = day or days[0]
    if chosen not in days:
        raise NotFoundError(
            f"day {chosen} is not in {planetlab_dir}; choose one of {', '.join(days)}."
        )
    return planetlab_dir / chosen, chosen


def read_order(order_file: Path, available: set[str]) -> list[str]:
    """Names in the order CloudSim read them; must be exactly the day's files."""
    if not order_file.is_file():
        raise NotFoundError(f"order file {order_file} does not exist.")
    names = [line.rstrip("\n") for line in order_file.read_text(encoding="utf-8").splitlines()]
    names = [n for n in names if n]
    if set(names) != available or len(names) != len(available):
        missing = len(available - set(names))
        extra = len(set(names) - available)
        raise ValidationError(
            f"order file {order_file} does not list the day's trace files exactly "
            f"({missing} missing, {extra} unknown, {len(names) - len(set(names))} repeated); "
            "use the order file of the same day."
        )
    return names


def read_trace(path: Path) -> list[float]:
    """One trace file: 288 integer percentages, returned as fractions."""
    lines = path.read_text(encoding="utf-8").split()
    if len(lines) != SAMPLES_PER_DAY:
        raise ValidationError(f"trace {path} has {len(lines)} samples, expected {SAMPLES_PER_DAY}.")
    try:
        values = [int(v) for v in lines]
    except ValueError as exc:
        raise ValidationError(f"trace {path} holds a non-integer sample ({exc}).") from exc
    if min(values) < 0 or max(values) > 100:
        raise ValidationError(f"trace {path} has a sample outside 0..100 percent.")
    return [v / 100.0 for v in values]


def load_day(
    planetlab_dir: Path, day: str | None = None, order_file: Path | None = None, vm_types: int = 4
) -> Workload:
    """Load one day; VM i gets type ``i // ceil(n / vm_types)`` as in CloudSim's Helper."""
    day_dir, day_name = resolve_day_dir(planetlab_dir, day)
    files = {p.name for p in day_dir.iterdir() if p.is_file()}
    if not files:
        raise ValidationError(f"{day_dir} holds no trace files.")
    names = read_order(order_file, files) if order_file else sorted(files)
    rows = [read_trace(day_dir / n) for n in names]
    util = np.array(rows, dtype=np.float64)
    util = np.hstack([util, util[:, -1:]])  # CloudSim repeats the last sample (289 points)
    per_type = math.ceil(len(names) / vm_types)
    vm_type = np.arange(len(names), dtype=np.int64) // per_type
    return Workload(day=day_name, names=tuple(names), vm_type=vm_type, util=util)
