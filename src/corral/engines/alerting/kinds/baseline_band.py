"""A metric outside its learned hour-of-week band (corral.engines.baseline).

The band of the hour the newest value falls in is learned from the history before it; while
a series is still learning (under a week of history) it raises nothing. ``margin`` widens the
band by that share of its width, so a value just past the 95th percentile is not news; and by
at least ``floor`` of the band's top (a flat series has a band of width 0, where any wobble
would be "outside"). Values below ``min_value`` are never news (a VM at 2 % CPU that is
usually at 1 %).
"""

from __future__ import annotations

from typing import Literal

from corral.engines.alerting.kinds.base import EntityKind, Needs, Params, Rule, seconds
from corral.engines.alerting.model import Condition, Snapshot
from corral.engines.baseline import BaselineState, learn


class BaselineBandParams(Params):
    metric: str
    entity: EntityKind = "vm"
    history: str = "28d"
    side: Literal["above", "below", "both"] = "above"
    margin: float = 0.25
    floor: float = 0.1
    min_value: float = 0.0


class BaselineBand(Rule):
    kind = "baseline"
    params_model = BaselineBandParams
    params: BaselineBandParams

    def needs(self) -> Needs:
        key = (self.params.entity, self.params.metric)
        return Needs(latest=frozenset({key}), history={key: seconds(self.params.history)})

    def evaluate(self, snapshot: Snapshot) -> list[Condition]:
        p = self.params
        key = (p.entity, p.metric)
        found = []
        for entity, value in snapshot.latest.get(key, {}).items():
            series = snapshot.history.get(key, {}).get(entity)
            if series is None or value < p.min_value:
                continue
            baseline = learn(series.times, series.values)
            band = baseline.band_at(snapshot.now) if baseline.state is BaselineState.ready else None
            if band is None:
                continue
            pad = max(p.margin * (band.high - band.low), p.floor * abs(band.high), 1e-9)
            above = p.side != "below" and value > band.high + pad
            below = p.side != "above" and value < band.low - pad
            if above or below:
                where = "above" if above else "below"
                summary = (
                    f"{p.metric} of {entity} is {value:g}, {where} its usual "
                    f"{band.low:g}..{band.high:g} for this hour of the week"
                )
                found.append(self.condition(snapshot, p.entity, entity, p.metric, value, summary))
        return found
