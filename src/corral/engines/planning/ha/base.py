"""What an HA admission-control policy is, and what it reports.

Each policy (one file each, registered in :mod:`.registry`) answers the same
question for a fleet: how many host failures can it absorb, and is that at
least the K it was asked to tolerate? ``demand_scale`` multiplies the powered-on
demand so the same policy can tell when growth breaks the guarantee.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from corral.engines.planning.model import VM, Fleet


@dataclass(frozen=True)
class HAReport:
    policy: str
    failures_to_tolerate: int
    tolerated_host_failures: int
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def admission_ok(self) -> bool:
        return self.tolerated_host_failures >= self.failures_to_tolerate

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "policy": self.policy,
            "failures_to_tolerate": self.failures_to_tolerate,
            "tolerated_host_failures": self.tolerated_host_failures,
            "admission_ok": self.admission_ok,
        }
        out.update(self.details)
        return out


class AdmissionPolicy(ABC):
    name: ClassVar[str]
    description: ClassVar[str]
    parameters: ClassVar[dict[str, str]] = {}

    @abstractmethod
    def evaluate(self, fleet: Fleet, failures: int, demand_scale: float = 1.0) -> HAReport:
        """Check the fleet against K = ``failures`` host failures."""


def powered_on(fleet: Fleet) -> list[VM]:
    """Running VMs that sit on a host: the ones HA must protect and admission control counts."""
    return [v for v in fleet.vms if v.running and v.host is not None]
