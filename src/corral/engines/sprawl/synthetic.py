"""Seeded synthetic metric windows for scenarios and benchmarks (never for real findings).

A busy VM follows an office-hours profile (quiet at night, peak mid-day) scaled
to its own level of CPU use, with log-normal noise; an idle VM runs near zero
with rare short spikes. Disk, network and memory follow the same activity. A
small share of samples is missing (NaN), as in real collection.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from corral.engines.sprawl.model import DEFAULT_STEP_S, FloatArray, MetricBatch

F32 = np.float32


@dataclass(frozen=True)
class SyntheticVMs:
    """Per-VM parameters of the generator, one entry per VM."""

    uuids: tuple[str, ...]
    vcpus: npt.NDArray[np.float32]
    memory_mib: npt.NDArray[np.float32]
    idle: npt.NDArray[np.bool_]
    cpu_level_pct: npt.NDArray[np.float32]  # busy VMs: typical mid-day CPU % of provisioned
    memory_fraction: npt.NDArray[np.float32]  # share of provisioned memory in use


def office_profile(samples_per_day: int) -> FloatArray:
    """Activity over one day in [0.15, 1]: low at night, peaking around 13:00."""
    hours = np.arange(samples_per_day, dtype=F32) * F32(24.0 / samples_per_day)
    day = np.clip(np.sin((hours - F32(7.0)) * F32(np.pi / 12.0)), 0, None)
    profile: FloatArray = (F32(0.15) + F32(0.85) * day).astype(F32)
    return profile


def synthetic_batch(
    vms: SyntheticVMs,
    days: int,
    start: int,
    rng: np.random.Generator,
    core_mhz: float = 2600.0,
    missing_fraction: float = 0.01,
    step_s: int = DEFAULT_STEP_S,
) -> MetricBatch:
    """Metrics of ``vms`` over ``days`` whole days from ``start`` (epoch s, multiple of step)."""
    spd = 86400 // step_s
    n, t = len(vms.uuids), days * spd
    activity = np.tile(office_profile(spd), days)[None, :]
    noise = rng.lognormal(0.0, 0.35, size=(n, t)).astype(F32)
    busy = np.where(vms.idle, F32(0.0), F32(1.0))[:, None]
    cpu_pct = busy * vms.cpu_level_pct[:, None] * activity * noise
    cpu_pct += _idle_cpu_pct(vms, rng, t, core_mhz)
    np.clip(cpu_pct, 0, 100, out=cpu_pct)
    cpu_mhz = cpu_pct * (vms.vcpus[:, None] * F32(core_mhz / 100.0))
    io = busy * activity * noise
    disk = io * F32(2.0e6) + F32(5.0e3) * noise
    net = io * F32(5.0e5) + F32(1.0e3) * noise
    mem = (vms.memory_mib * vms.memory_fraction)[:, None] * (F32(0.9) + F32(0.1) * activity)
    missing = rng.random((n, t), dtype=F32) < F32(missing_fraction)
    series = [cpu_pct, cpu_mhz, disk, net, mem]
    for arr in series:
        arr[missing] = np.nan
    return MetricBatch(
        vm_uuids=vms.uuids,
        start=start,
        step_s=step_s,
        cpu_pct=cpu_pct,
        cpu_mhz=cpu_mhz,
        disk_bytes_s=disk,
        net_bytes_s=net,
        memory_mib={"rss": mem.astype(F32)},
    )


def _idle_cpu_pct(
    vms: SyntheticVMs, rng: np.random.Generator, t: int, core_mhz: float
) -> FloatArray:
    """Idle VMs burn 5-60 MHz, with a 300 MHz spike in about 1 % of samples."""
    n = len(vms.uuids)
    mhz = rng.uniform(5.0, 60.0, size=(n, t)).astype(F32)
    mhz[rng.random((n, t), dtype=F32) < F32(0.01)] = F32(300.0)
    pct = mhz / (vms.vcpus[:, None] * F32(core_mhz / 100.0))
    return np.where(vms.idle[:, None], pct, F32(0.0)).astype(F32)
