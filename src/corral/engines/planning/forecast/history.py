"""Usage histories: per host and resource, timestamps and values; and their forecasts.

A history file is CSV with a header ``timestamp,host,resource,value``:
``timestamp`` in epoch seconds or ISO 8601, ``resource`` ``cpu_mhz`` (physical
MHz used) or ``memory_mib``. The cluster series is the sum of the host series
on the timestamps they share, against the capacity of those hosts minus the
K largest (a ``cluster`` host column instead gives the whole fleet's series).
"""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from corral.engines.planning.forecast.exhaustion import Exhaustion, time_to_exhaustion
from corral.engines.planning.forecast.seasonal import fit
from corral.engines.planning.model import Fleet
from corral.engines.planning.state import FloatArray
from corral.errors import NotFoundError, ValidationError

HISTORY_RESOURCES = ("cpu_mhz", "memory_mib")


@dataclass(frozen=True)
class Series:
    times: FloatArray
    values: FloatArray


History = dict[tuple[str, str], Series]


def _timestamp(raw: str, where: str) -> float:
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise ValidationError(
            f"{where}: timestamp {raw!r} is neither epoch seconds nor ISO 8601."
        ) from None


def load_history(path: str | Path) -> History:
    """Read a history CSV into ``{(host, resource): Series}``."""
    p = Path(path)
    if not p.is_file():
        raise NotFoundError(
            f"History file {p} does not exist; give a CSV timestamp,host,resource,value."
        )
    cols: dict[tuple[str, str], tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    with p.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = {"timestamp", "host", "resource", "value"} - set(reader.fieldnames or [])
        if missing:
            raise ValidationError(f"History file {p} lacks column(s) {', '.join(sorted(missing))}.")
        for n, row in enumerate(reader, start=2):
            where = f"{p.name} line {n}"
            if row["resource"] not in HISTORY_RESOURCES:
                raise ValidationError(f"{where}: resource must be cpu_mhz or memory_mib.")
            try:
                value = float(row["value"])
            except ValueError:
                raise ValidationError(f"{where}: value {row['value']!r} is not a number.") from None
            ts, vs = cols[(row["host"], row["resource"])]
            ts.append(_timestamp(row["timestamp"], where))
            vs.append(value)
    return {k: Series(np.array(t), np.array(v)) for k, (t, v) in cols.items()}


def cluster_series(history: History, resource: str) -> Series | None:
    """Sum of every host's series for ``resource`` over the timestamps all of them share."""
    parts = [s for (_, r), s in history.items() if r == resource]
    if not parts:
        return None
    common = parts[0].times
    for s in parts[1:]:
        common = np.intersect1d(common, s.times)
    total = np.zeros(common.size)
    for s in parts:
        total += _at(s, common)
    return Series(common, total)


def _at(s: Series, times: FloatArray) -> FloatArray:
    order = np.argsort(s.times)
    idx = np.searchsorted(s.times[order], times)
    return np.asarray(s.values[order][idx], dtype=np.float64)


def host_capacity(fleet: Fleet, host: str, resource: str) -> float:
    h = fleet.host(host)
    return float(h.cpu_capacity_mhz if resource == "cpu_mhz" else h.memory_mib)


def cluster_capacity(fleet: Fleet, hosts: set[str], resource: str, failures: int) -> float:
    """Capacity of ``hosts`` minus the K largest of them (the N+K reserve)."""
    caps = sorted((host_capacity(fleet, h, resource) for h in hosts), reverse=True)
    return float(sum(caps[failures:]))


def forecast_fleet(
    fleet: Fleet, history: History, failures: int = 0, horizon_days: float = 365.0
) -> list[Exhaustion]:
    """Time to exhaustion for every host and resource in the history, and for the cluster."""
    out = [
        time_to_exhaustion(
            host, res, s.times, s.values, host_capacity(fleet, host, res), horizon_days
        )
        for (host, res), s in sorted(history.items())
        if host != "cluster"
    ]
    for res in HISTORY_RESOURCES:
        per_host = {k: v for k, v in history.items() if k[0] != "cluster"}
        given = history.get(("cluster", res))
        s = given or cluster_series(per_host, res)
        hosts = {h.name for h in fleet.hosts} if given else {h for h, r in per_host if r == res}
        if s is not None and s.times.size >= 3:
            cap = cluster_capacity(fleet, hosts, res, failures)
            out.append(time_to_exhaustion("cluster", res, s.times, s.values, cap, horizon_days))
    return out


def growth_per_month(history: History) -> float:
    """Relative demand growth per month from the cluster trend (the larger of CPU and memory).

    The cluster series of each resource is fitted (trend + seasonality); its
    slope over its current fitted level, times 30.44 days, is the monthly rate.
    Shrinking demand gives 0.
    """
    per_host = {k: v for k, v in history.items() if k[0] != "cluster"}
    rates = [0.0]
    for res in HISTORY_RESOURCES:
        s = history.get(("cluster", res)) or cluster_series(per_host, res)
        rate = None if s is None else relative_growth(s)
        if rate is not None:
            rates.append(rate)
    return max(rates)


def relative_growth(s: Series) -> float | None:
    """The fitted trend (with seasonality) of ``s`` a month, over its current fitted level;
    None with fewer than 3 points or no positive level."""
    if s.times.size < 3:
        return None
    model = fit(s.times, s.values)
    level = float(model.predict(np.array([float(s.times.max())]))[0])
    return model.slope_per_day * 30.44 / level if level > 0 else None
