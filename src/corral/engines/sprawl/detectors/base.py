"""The detector plugin contract: a name, a category, described parameters, one ``detect``.

Why a whole-fleet ``detect``: metric detectors work on every VM at once with
numpy, and inventory detectors simply loop; both return one outcome per
subject they have an opinion on (a Finding or an InsufficientData).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from corral.engines.costing import CostModel, VMCost
from corral.engines.sprawl.model import (
    Category,
    Evidence,
    Finding,
    HostRecord,
    InsufficientData,
    MetricBatch,
    Outcome,
    VMRecord,
    Volume,
)
from corral.errors import ConfigError

PLACEHOLDERS = frozenset({"", "-", "n/a", "na", "none", "null", "unknown", "tbd", "?"})


@dataclass(frozen=True)
class Param:
    """One tunable of a detector, with its default and what it means."""

    name: str
    default: float
    description: str
    minimum: float = 0.0
    maximum: float | None = None


@dataclass(frozen=True)
class DetectionContext:
    """Everything a detector may look at; ``costs`` is each VM's monthly cost by uuid."""

    vms: Sequence[VMRecord]
    now: datetime
    costs: Mapping[str, VMCost]
    cost_model: CostModel
    hosts: Sequence[HostRecord] = ()
    volumes: Sequence[Volume] = ()
    metrics: MetricBatch | None = None


class Detector(ABC):
    """Base of every sprawl detector; subclasses set the class variables and ``detect``."""

    name: ClassVar[str]
    category: ClassVar[Category]
    description: ClassVar[str]
    params: ClassVar[tuple[Param, ...]] = ()
    #: True when ``detect`` reads metrics: such a detector judges each VM from that VM's own
    #: rows only, so a fleet may be handed to it in chunks (see ``engines.sprawl.chunked``).
    uses_metrics: ClassVar[bool] = False

    def __init__(self, **overrides: float) -> None:
        known = {p.name: p for p in self.params}
        for key in overrides:
            if key not in known:
                raise ConfigError(
                    f"detector '{self.name}' has no parameter '{key}'; "
                    f"known: {', '.join(sorted(known)) or 'none'}."
                )
        self.values: dict[str, float] = {}
        for p in self.params:
            self.values[p.name] = _checked(self.name, p, overrides.get(p.name, p.default))

    def param(self, name: str) -> float:
        return self.values[name]

    @abstractmethod
    def detect(self, ctx: DetectionContext) -> list[Outcome]:
        """One outcome per subject this detector has an opinion on."""

    def finding(
        self,
        vm: VMRecord,
        ctx: DetectionContext,
        evidence: Evidence,
        action: str,
        confidence: float = 1.0,
        held: float | None = None,
    ) -> Finding:
        """A finding about ``vm``; by default it holds the VM's whole monthly cost."""
        return Finding(
            subject=vm.uuid,
            subject_name=vm.name,
            category=self.category,
            detector=self.name,
            evidence=evidence,
            confidence=round(confidence, 3),
            monthly_cost_held=ctx.costs[vm.uuid].total if held is None else held,
            suggested_action=action,
        )

    def insufficient(self, vm: VMRecord, reason: str) -> InsufficientData:
        return InsufficientData(vm.uuid, vm.name, self.name, reason)


class MissingFieldDetector(Detector):
    """A governance field (owner, purpose ...) missing or a placeholder; evidence names both."""

    field: str  # the VMRecord attribute that must be filled in
    context_field: str  # shown beside it, to help find who to ask
    action: str

    def detect(self, ctx: DetectionContext) -> list[Outcome]:
        out: list[Outcome] = []
        for vm in ctx.vms:
            value = getattr(vm, self.field)
            if is_blank(value):
                other = getattr(vm, self.context_field) or ""
                evidence = Evidence({self.field: value or "", self.context_field: other})
                out.append(self.finding(vm, ctx, evidence, self.action))
        return out


def _checked(detector: str, p: Param, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"detector '{detector}' parameter '{p.name}' must be a number.")
    if value < p.minimum or (p.maximum is not None and value > p.maximum):
        upper = "" if p.maximum is None else f" and at most {p.maximum}"
        raise ConfigError(
            f"detector '{detector}' parameter '{p.name}' must be at least {p.minimum}{upper}."
        )
    return float(value)


def is_blank(value: str | None) -> bool:
    """True for a missing value or a placeholder such as 'n/a' or 'unknown'."""
    return value is None or value.strip().lower() in PLACEHOLDERS
