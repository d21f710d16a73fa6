"""Typed placement outcomes, each with the reason every rejected host was rejected."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Rejection:
    host: str
    filter: str
    reason: str


@dataclass(frozen=True)
class Rejections:
    """Per-host reasons (first failing filter), possibly truncated, plus counts per filter."""

    reasons: tuple[Rejection, ...] = ()
    counts: dict[str, int] = field(default_factory=dict)
    truncated: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "counts": dict(self.counts),
            "hosts": [
                {"host": r.host, "filter": r.filter, "reason": r.reason} for r in self.reasons
            ],
            "truncated": self.truncated,
        }


@dataclass(frozen=True)
class Placed:
    vm: str
    host: str
    score: float
    rejections: Rejections

    status = "placed"


@dataclass(frozen=True)
class UnschedulableFreeingWouldHelp:
    """No host passes now, but these hosts would if other VMs moved away or were freed."""

    vm: str
    rejections: Rejections
    candidates: tuple[str, ...]

    status = "unschedulable_freeing_would_help"


@dataclass(frozen=True)
class Unschedulable:
    """No host could ever take this VM: a hard requirement (features, cores) is unmet."""

    vm: str
    rejections: Rejections

    status = "unschedulable"


Outcome = Placed | UnschedulableFreeingWouldHelp | Unschedulable


def outcome_to_dict(o: Outcome) -> dict[str, Any]:
    out: dict[str, Any] = {"vm": o.vm, "status": o.status}
    if isinstance(o, Placed):
        out.update(host=o.host, score=round(o.score, 6))
    if isinstance(o, UnschedulableFreeingWouldHelp):
        out["candidates"] = list(o.candidates)
    out["rejections"] = o.rejections.to_dict()
    return out
