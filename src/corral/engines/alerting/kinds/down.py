"""A collector or host that stopped reporting: no sample for longer than ``after``."""

from __future__ import annotations

from typing import Literal

from corral.engines.alerting.kinds.base import Needs, Params, Rule, seconds
from corral.engines.alerting.model import Condition, Snapshot


class DownParams(Params):
    entity: Literal["host", "collector"] = "host"
    after: str = "5m"


class Down(Rule):
    kind = "down"
    params_model = DownParams
    params: DownParams

    def needs(self) -> Needs:
        return Needs(last_seen=frozenset({self.params.entity}))

    def evaluate(self, snapshot: Snapshot) -> list[Condition]:
        p = self.params
        limit = seconds(p.after)
        found = []
        for entity, seen in snapshot.last_seen.get(p.entity, {}).items():
            silent = snapshot.now - seen
            if silent > limit:
                summary = f"{p.entity} {entity} has sent nothing for {silent / 60:.0f} min"
                found.append(
                    self.condition(snapshot, p.entity, entity, "last_seen", silent, summary)
                )
        return found
