"""Trace-driven dynamic consolidation simulator.

Reproduces the CloudSim PlanetLab set-up of Beloglazov & Buyya (CCPE 2012).
"""

from corral.engines.simulation.engine import simulate
from corral.engines.simulation.lower_bound import energy_lower_bound_kwh
from corral.engines.simulation.model import (
    HostType,
    SimulationConfig,
    SimulationResult,
    VmType,
    Workload,
    planetlab_fleet,
    planetlab_host_types,
    planetlab_vm_types,
)
from corral.engines.simulation.policies import describe_policies, make_policy

__all__ = [
    "HostType",
    "SimulationConfig",
    "SimulationResult",
    "VmType",
    "Workload",
    "describe_policies",
    "energy_lower_bound_kwh",
    "make_policy",
    "planetlab_fleet",
    "planetlab_host_types",
    "planetlab_vm_types",
    "simulate",
]
