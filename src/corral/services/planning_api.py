"""Usage history given as data points (a REST body) instead of a CSV file.

The planning engine reads a history from a CSV path (``load_history``); the REST
API receives the same rows as JSON. This builds the engine's ``History`` from
those rows, grouped by (host, resource) in the order given, as the CSV reader does.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import numpy as np

from corral.engines.planning.forecast.history import HISTORY_RESOURCES, History, Series
from corral.errors import ValidationError

__all__ = ["History", "HistoryPoint", "HistoryResource", "history_from_points"]


class HistoryResource(StrEnum):
    cpu_mhz = "cpu_mhz"  # physical MHz used
    memory_mib = "memory_mib"


@dataclass(frozen=True, slots=True)
class HistoryPoint:
    """One row of a usage history: ``resource`` is cpu_mhz or memory_mib."""

    timestamp: datetime
    host: str
    resource: HistoryResource
    value: float


def history_from_points(points: Iterable[HistoryPoint]) -> History:
    columns: dict[tuple[str, str], tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    for n, p in enumerate(points):
        if p.resource.value not in HISTORY_RESOURCES:
            raise ValidationError(f"history[{n}]: resource must be cpu_mhz or memory_mib.")
        times, values = columns[(p.host, p.resource.value)]
        times.append(p.timestamp.timestamp())
        values.append(p.value)
    if not columns:
        raise ValidationError("the usage history is empty; give at least one point per host.")
    return {k: Series(np.array(t), np.array(v)) for k, (t, v) in columns.items()}
