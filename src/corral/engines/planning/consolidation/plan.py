"""What a consolidation, evacuation or rebalancing plan is."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from corral.engines.planning.consolidation.bounds import LowerBound


@dataclass(frozen=True)
class Move:
    vm: str
    source: str | None
    target: str
    #: A hop through a third host to break a cycle of moves.
    temporary: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"vm": self.vm, "from": self.source, "to": self.target, "temporary": self.temporary}


@dataclass(frozen=True)
class MigrationSchedule:
    """Moves in an order that never overcommits a host; ``blocked`` if none was found."""

    steps: tuple[Move, ...]
    blocked: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        return not self.blocked


@dataclass(frozen=True)
class ConsolidationPlan:
    """``active_hosts_after`` counts every host left on, including empty N+K standbys."""

    method: str
    active_hosts_before: int
    active_hosts_after: int
    lower_bound: LowerBound
    target: dict[str, str]
    schedule: MigrationSchedule
    hosts_to_power_off: tuple[str, ...]
    optimal: bool | None = None
    unplaced: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def migrations(self) -> int:
        """Live migrations, temporary hops included (placing a new VM is not one)."""
        return sum(1 for m in self.schedule.steps if m.source is not None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "optimal": self.optimal,
            "active_hosts_before": self.active_hosts_before,
            "active_hosts_after": self.active_hosts_after,
            "lower_bound": self.lower_bound.to_dict(),
            "migrations": self.migrations,
            "steps": [m.to_dict() for m in self.schedule.steps],
            "schedule_complete": self.schedule.complete,
            "blocked_vms": list(self.schedule.blocked),
            "hosts_to_power_off": list(self.hosts_to_power_off),
            "unplaced_vms": list(self.unplaced),
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class EvacuationPlan:
    hosts: tuple[str, ...]
    schedule: MigrationSchedule
    unplaced: tuple[str, ...]
    reasons: dict[str, str]

    @property
    def complete(self) -> bool:
        return not self.unplaced

    def to_dict(self) -> dict[str, Any]:
        return {
            "hosts": list(self.hosts),
            "complete": self.complete,
            "moves": [m.to_dict() for m in self.schedule.steps],
            "unplaced_vms": list(self.unplaced),
            "reasons": dict(self.reasons),
        }
