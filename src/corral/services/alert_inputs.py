"""What the alert rules look at, read from the metrics store (either store: one interface).

Newest values come from one ``latest`` query over the look-back window (a value older than
``fresh_s`` is too old for a threshold, but still tells when its entity was last seen, which
the ``down`` rule needs); histories are read per series only for the rules that need them.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from corral.domain.metrics import EntityKind
from corral.engines.alerting import Needs, Series, Snapshot
from corral.metrics.store.base import MetricsStore


@dataclass(frozen=True)
class Window:
    fresh_s: int = 900  # a newest value older than this is not compared with a threshold
    lookback_s: int = 7 * 86400  # how far back "last seen" looks
    history_step_s: int = 300  # bucket of the histories (the detector assumes 5 minutes)


def read_snapshot(
    store: MetricsStore, needs: Needs, now: int, window: Window = Window()
) -> Snapshot:
    kinds = {k for k, _ in needs.latest} | {k for k, _ in needs.history} | set(needs.last_seen)
    rows = store.latest([EntityKind(k) for k in sorted(kinds)], now - window.lookback_s)
    latest: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    seen: dict[str, dict[str, float]] = defaultdict(dict)
    hosts: dict[str, str] = {}
    for r in rows:
        kind = r.kind.value
        hosts[r.entity] = r.host
        seen[kind][r.entity] = max(seen[kind].get(r.entity, 0.0), float(r.ts))
        if r.ts >= now - window.fresh_s:
            latest[(kind, r.metric)][r.entity] = r.value
    stored: dict[tuple[str, str], list[str]] = defaultdict(list)
    for r in rows:
        stored[(r.kind.value, r.metric)].append(r.entity)
    history: dict[tuple[str, str], dict[str, Series]] = {}
    for (kind, metric), span in needs.history.items():
        history[(kind, metric)] = {
            e: _series(store, kind, e, metric, now - int(span), now, window.history_step_s)
            for e in stored.get((kind, metric), [])
        }
    return Snapshot(float(now), dict(latest), history, dict(seen), hosts)


def _series(
    store: MetricsStore, kind: str, entity: str, metric: str, start: int, end: int, step: int
) -> Series:
    points = store.series(EntityKind(kind), entity, metric, start - start % step, end, step)
    kept = [(float(p.ts), p.value) for p in points if math.isfinite(p.value)]
    return Series(tuple(t for t, _ in kept), tuple(v for _, v in kept))
