"""An anomaly on a metric (corral.engines.anomaly): the streaming detector alerted on one of
the last ``recent`` samples of the history window."""

from __future__ import annotations

from corral.engines.alerting.kinds.base import EntityKind, Needs, Params, Rule, seconds
from corral.engines.alerting.model import Condition, Snapshot
from corral.engines.anomaly.detector import detect


class AnomalyParams(Params):
    metric: str
    entity: EntityKind = "vm"
    history: str = "7d"
    recent: int = 3


class Anomaly(Rule):
    kind = "anomaly"
    params_model = AnomalyParams
    params: AnomalyParams

    def needs(self) -> Needs:
        key = (self.params.entity, self.params.metric)
        return Needs(history={key: seconds(self.params.history)})

    def evaluate(self, snapshot: Snapshot) -> list[Condition]:
        p = self.params
        found = []
        for entity, series in snapshot.history.get((p.entity, p.metric), {}).items():
            verdicts = detect(series.values)[-p.recent :]
            hits = [v for v in verdicts if v.alert]
            if hits:
                last = series.values[-1]
                score = max(v.score for v in hits)
                summary = f"{p.metric} of {entity} behaves as never before (score {score:.2f})"
                found.append(self.condition(snapshot, p.entity, entity, p.metric, last, summary))
        return found
