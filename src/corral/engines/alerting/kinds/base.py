"""What every rule kind shares: its name and labels, how long a condition must last, what
it reads from the store, and how a finding is labelled.

A rule kind is one small class per file in this package, registered in ``KINDS``
(``__init__.py``); its parameters are a pydantic model (``Params``) with a default for each
optional one, so the rules file is checked before anything runs.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from corral.engines.alerting.model import Condition, MetricKey, Severity, Snapshot, labels_of

EntityKind = Literal["vm", "host"]
#: What a rule may read besides metrics: the planner's fleet, licence use, restore points.
Fact = Literal["fleet", "licences", "backups"]
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")


def seconds(text: str | int | float) -> float:
    """``30s``, ``5m``, ``1h``, ``7d`` or a number of seconds."""
    if isinstance(text, int | float):
        return float(text)
    found = _DURATION.match(text.strip())
    if not found:
        raise ValueError(f"{text!r} is not a duration like 30s, 5m, 1h or 7d")
    return float(found[1]) * _UNITS[found[2]]


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Common:
    """The part of a rule that is not its kind's: see the rules file's comments."""

    name: str
    for_s: float = 0.0
    severity: Severity = Severity.warning
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Needs:
    """What a rule reads: newest values, history windows (seconds) and last-seen times."""

    latest: frozenset[MetricKey] = frozenset()
    history: Mapping[MetricKey, float] = field(default_factory=dict)
    last_seen: frozenset[str] = frozenset()
    facts: frozenset[Fact] = frozenset()


class Rule(ABC):
    """One rule: evaluated on a snapshot, it answers the conditions that hold now."""

    kind: ClassVar[str]
    params_model: ClassVar[type[Params]]

    def __init__(self, common: Common, params: Params) -> None:
        self.common = common
        self.params = params

    @property
    def name(self) -> str:
        return self.common.name

    @abstractmethod
    def needs(self) -> Needs: ...

    @abstractmethod
    def evaluate(self, snapshot: Snapshot) -> list[Condition]: ...

    def condition(
        self,
        snapshot: Snapshot,
        kind: str,
        entity: str,
        metric: str,
        value: float,
        summary: str,
        host: str | None = None,
    ) -> Condition:
        """A finding labelled with the rule, the entity, its host (``host``, else the one
        the snapshot knows) and the rule's own labels."""
        labels = {
            **self.common.labels,
            "alertname": self.name,
            "kind": kind,
            "entity": entity,
            "metric": metric,
            "severity": self.common.severity.value,
        }
        host = host or snapshot.hosts.get(entity) or (entity if kind == "host" else None)
        if host:
            labels["host"] = host
        return Condition(self.name, labels_of(labels), value, summary)
