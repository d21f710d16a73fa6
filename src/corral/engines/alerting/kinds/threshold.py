"""A static threshold on a metric's newest value: ``cpu_pct > 90`` on every VM."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Literal

from corral.engines.alerting.kinds.base import EntityKind, Needs, Params, Rule
from corral.engines.alerting.model import Condition, Snapshot

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


class ThresholdParams(Params):
    metric: str
    entity: EntityKind = "vm"
    op: Literal[">", ">=", "<", "<="] = ">"
    value: float


class Threshold(Rule):
    kind = "threshold"
    params_model = ThresholdParams
    params: ThresholdParams

    def needs(self) -> Needs:
        return Needs(latest=frozenset({(self.params.entity, self.params.metric)}))

    def evaluate(self, snapshot: Snapshot) -> list[Condition]:
        p = self.params
        values = snapshot.latest.get((p.entity, p.metric), {})
        test, limit = _OPS[p.op], p.value
        return [
            self.condition(
                snapshot,
                p.entity,
                entity,
                p.metric,
                v,
                f"{p.metric} of {entity} is {v:g} {p.op} {limit:g}",
            )
            for entity, v in values.items()
            if test(v, limit)
        ]
