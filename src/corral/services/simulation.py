"""The trace-driven consolidation simulator (CloudSim's PlanetLab set-up) as a service.

Loads one day of PlanetLab traces, builds the policy from its name and overrides,
and runs the pure simulation engine; the result carries the metrics of
Beloglazov & Buyya (2012) beside the day's physical lower bound on energy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from corral.engines.simulation import (
    SimulationResult,
    make_policy,
    planetlab,
    planetlab_fleet,
    planetlab_vm_types,
    simulate,
)
from corral.engines.simulation.policies import REGISTRY

__all__ = ["PolicyParameter", "SimulationPolicy", "SimulationResult", "days", "policies", "run"]


@dataclass(frozen=True)
class PolicyParameter:
    name: str
    default: float
    description: str


@dataclass(frozen=True)
class SimulationPolicy:
    """A policy family (``lr-mmt``, ``corral``...) with its parameters and their defaults."""

    family: str
    summary: str
    parameters: tuple[PolicyParameter, ...]


def run(
    planetlab_dir: Path,
    policy: str,
    *,
    day: str | None = None,
    order_file: Path | None = None,
    hosts: int = 800,
    overrides: Mapping[str, float] | None = None,
) -> SimulationResult:
    """Run ``policy`` (e.g. ``lr-mmt-1.2``) over one trace day (default: the first) on
    ``hosts`` hosts (half G4, half G5). Returns the engine's SimulationResult: energy,
    migrations, SLATAH, PDM, SLAV, ESV and the energy lower bound. Unknown policy:
    NotFoundError; bad parameter: ValidationError."""
    chosen = make_policy(policy, dict(overrides or {}))
    workload = planetlab.load_day(planetlab_dir, day, order_file)
    return simulate(planetlab_fleet(hosts), planetlab_vm_types(), workload, chosen)


def policies() -> tuple[SimulationPolicy, ...]:
    """Every consolidation policy family with its parameters and defaults, by name."""
    return tuple(
        SimulationPolicy(
            family=family,
            summary=cls.summary,
            parameters=tuple(
                PolicyParameter(p.name, p.default, p.description) for p in cls.parameters
            ),
        )
        for family, cls in sorted(REGISTRY.items())
    )


def days(planetlab_dir: Path) -> tuple[str, ...]:
    """The trace days (folder names such as ``20110303``) under ``planetlab_dir``."""
    return tuple(planetlab.list_days(planetlab_dir))
