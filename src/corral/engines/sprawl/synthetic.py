"""Seeded synthetic metric windows for scenarios and benchmarks (never for real findings).

A busy VM follows an office-hours profile (quiet at night, peak mid-day) scaled
to its own level of CPU use, with log-normal noise; an idle VM burns 5-60 MHz
with a 300 MHz spike in about 1 % of samples. Disk, network and memory follow
the same activity. About 1 % of samples is missing (NaN), as in real collection.
Two random draws per sample, operations in place: a benchmark's fleet of
100,000 VMs x 30 days must not take longer to make than to analyse.
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
    uniform = rng.random((n, t), dtype=F32)
    noise = rng.standard_normal((n, t), dtype=F32)
    noise *= F32(0.35)
    np.exp(noise, out=noise)
    activity = np.tile(office_profile(spd), days)[None, :]
    io = np.where(vms.idle[:, None], F32(0.0), activity) * noise  # busy activity, 0 when idle
    cpu_pct = io * vms.cpu_level_pct[:, None]
    mhz_per_pct = (vms.vcpus * F32(core_mhz / 100.0))[:, None]
    cpu_pct += _idle_cpu_mhz(vms.idle, uniform) / mhz_per_pct
    np.clip(cpu_pct, 0, 100, out=cpu_pct)
    disk = io * F32(2.0e6)
    disk += F32(5.0e3) * noise
    net = io * F32(5.0e5)
    net += F32(1.0e3) * noise
    mem = (
        np.broadcast_to(F32(0.9) + F32(0.1) * activity, (n, t))
        * (vms.memory_mib * vms.memory_fraction)[:, None]
    )
    cpu_mhz = cpu_pct * mhz_per_pct
    missing = uniform < F32(missing_fraction)
    for arr in (cpu_pct, cpu_mhz, disk, net, mem):
        arr[missing] = np.nan
    return MetricBatch(
        vm_uuids=vms.uuids,
        start=start,
        step_s=step_s,
        cpu_pct=cpu_pct,
        cpu_mhz=cpu_mhz,
        disk_bytes_s=disk,
        net_bytes_s=net,
        memory_mib={"rss": mem.astype(F32, copy=False)},
    )


def _idle_cpu_mhz(idle: npt.NDArray[np.bool_], uniform: FloatArray) -> FloatArray:
    """5-60 MHz on idle VMs (300 MHz when the draw is in its top 1 %), 0 on busy ones."""
    mhz = F32(5.0) + F32(55.0) * uniform
    mhz[uniform > F32(0.99)] = F32(300.0)
    mhz *= idle[:, None]
    return mhz
