"""Plain data of a trace-driven consolidation run: host and VM types, a workload, a result.

The PlanetLab set-up of Beloglazov & Buyya (CCPE 2012) as CloudSim's power examples define it
is available as ``planetlab_host_types()`` / ``planetlab_vm_types()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class HostType:
    """A physical machine model; ``power_w`` is the SPECpower curve at 0 %, 10 %, ..., 100 %."""

    name: str
    pes: int
    mips_per_pe: float
    ram_mb: int
    power_w: tuple[float, ...]

    @property
    def mips(self) -> float:
        return self.pes * self.mips_per_pe


@dataclass(frozen=True)
class VmType:
    name: str
    mips: float
    ram_mb: int


@dataclass(frozen=True)
class Workload:
    """One trace per VM: ``util[i, j]`` is VM i's CPU utilization (0..1) at sample j.

    ``vm_type[i]`` indexes the VM type list handed to the simulator.
    """

    day: str
    names: tuple[str, ...]
    vm_type: IntArray
    util: FloatArray
    sample_seconds: float = 300.0

    @property
    def size(self) -> int:
        return len(self.names)


@dataclass(frozen=True)
class SimulationConfig:
    """Timing and accounting of the run; defaults reproduce CloudSim 3.0.3's PlanetLab runs.

    CloudSim's first datacenter event is at 300.1 s (VM-creation acknowledgements arrive at
    0.1 s), the run stops at 86400 s, so 287 consolidation steps are simulated. A VM whose
    requested MIPS is exactly zero at an update is removed for good (``remove_idle_vms``),
    as CloudSim's PowerDatacenter does with "completed" VMs.
    """

    interval_s: float = 300.0
    start_offset_s: float = 0.1
    duration_s: float = 86400.0
    migration_bandwidth_mbit: float = 500.0
    migration_cpu_penalty: float = 0.1
    remove_idle_vms: bool = True


@dataclass
class SimulationResult:
    """What one run measured, with the metrics of Beloglazov & Buyya (2012)."""

    policy: str
    day: str
    energy_kwh: float
    migrations: int
    slatah_pct: float
    pdm_pct: float
    slav: float
    esv: float
    overall_sla_violation_pct: float
    host_shutdowns: int
    vms: int
    vms_removed_idle: int
    steps: int
    mean_active_hosts: float
    served_demand_mips_s: float
    vms_unplaced: int = 0
    energy_lower_bound_kwh: float = 0.0
    served_lower_bound_kwh: float = 0.0
    runtime_s: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        """Flat JSON-ready mapping (the CLI's contract keys first)."""
        ratio = (
            self.energy_kwh / self.energy_lower_bound_kwh if self.energy_lower_bound_kwh else 0.0
        )
        return {
            "day": self.day,
            "policy": self.policy,
            "energy_kwh": round(self.energy_kwh, 3),
            "migrations": self.migrations,
            "slatah_pct": round(self.slatah_pct, 4),
            "pdm_pct": round(self.pdm_pct, 5),
            "slav": self.slav,
            "esv": self.esv,
            "energy_lower_bound_kwh": round(self.energy_lower_bound_kwh, 3),
            "energy_vs_lower_bound": round(ratio, 4),
            "served_lower_bound_kwh": round(self.served_lower_bound_kwh, 3),
            "overall_sla_violation_pct": round(self.overall_sla_violation_pct, 4),
            "host_shutdowns": self.host_shutdowns,
            "vms": self.vms,
            "vms_removed_idle": self.vms_removed_idle,
            "vms_unplaced": self.vms_unplaced,
            "steps": self.steps,
            "mean_active_hosts": round(self.mean_active_hosts, 2),
            "runtime_s": round(self.runtime_s, 3),
        }


G4_POWER = (86.0, 89.4, 92.6, 96.0, 99.5, 102.0, 106.0, 108.0, 112.0, 114.0, 117.0)
G5_POWER = (93.7, 97.0, 101.0, 105.0, 110.0, 116.0, 121.0, 125.0, 129.0, 133.0, 135.0)


def planetlab_host_types() -> tuple[HostType, HostType]:
    """HP ProLiant ML110 G4 (Xeon 3040) and G5 (Xeon 3075), SPECpower curves."""
    return (
        HostType("HP ProLiant ML110 G4", 2, 1860.0, 4096, G4_POWER),
        HostType("HP ProLiant ML110 G5", 2, 2660.0, 4096, G5_POWER),
    )


def planetlab_vm_types() -> tuple[VmType, ...]:
    """The four EC2-like VM types of CloudSim's power examples (1 vCPU each)."""
    return (
        VmType("high-cpu medium", 2500.0, 870),
        VmType("extra large", 2000.0, 1740),
        VmType("small", 1000.0, 1740),
        VmType("micro", 500.0, 613),
    )


def planetlab_fleet(count: int = 800) -> tuple[HostType, ...]:
    """CloudSim's host list: host i is type i % 2 (G4, G5, G4, ...)."""
    kinds = planetlab_host_types()
    return tuple(kinds[i % 2] for i in range(count))
