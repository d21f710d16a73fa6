"""Right-sizing of CPU and memory from percentiles over a window.

Modes (the statistic of demand a size must cover, before headroom):
  conservative  the maximum over the window: never below any observed peak
  moderate      the 95th percentile over the window: short spikes may queue
  aggressive    the median of the daily peaks: sized for a typical day's peak
The recommendation is demand x (1 + headroom), rounded up to whole vCPUs and to
``memory_step_mib``. CPU demand comes from CPU % of the provisioned vCPUs, or
from CPU MHz over the host's core MHz. Memory prefers the balloon driver's guest
view, then the host process RSS, then a trace's figure, and says which it used.
Powered-off VMs are not right-sized (they hold no compute).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

import numpy as np

from corral.engines.costing import RateCard
from corral.engines.sprawl import stats
from corral.engines.sprawl.model import (
    MEMORY_SOURCES,
    FloatArray,
    HostRecord,
    InsufficientData,
    MetricBatch,
    VMRecord,
    epoch_to_datetime,
)

DETECTOR_NAME = "rightsizing"
Verdict = Literal["oversized", "undersized", "right-sized"]


class RightSizeMode(StrEnum):
    conservative = "conservative"  # max over the window
    moderate = "moderate"  # p95 over the window
    aggressive = "aggressive"  # median of daily peaks


@dataclass(frozen=True)
class RightSizingParams:
    """Tunables of right-sizing, with their defaults."""

    mode: RightSizeMode = RightSizeMode.moderate
    headroom: float = 0.2  # 20 % above the demand statistic
    window_days: int = 30
    min_days: int = 7  # covered days needed to recommend
    min_day_coverage: float = 0.5  # share of a day's samples that covers it
    memory_step_mib: int = 512
    min_memory_mib: int = 512
    min_vcpus: int = 1


@dataclass(frozen=True)
class ResourceAdvice:
    """One resource: its size now, the measured demand statistic, the recommended size."""

    current: float
    demand: float
    recommended: float
    verdict: Verdict
    source: str  # which series the demand came from


@dataclass(frozen=True)
class RightSizing:
    vm_uuid: str
    vm_name: str
    mode: RightSizeMode
    headroom: float
    window_start: str
    window_end: str
    cpu: ResourceAdvice | None  # None: see cpu_note
    memory: ResourceAdvice | None  # None: see memory_note
    cpu_note: str
    memory_note: str
    monthly_saving: float  # positive when shrinking saves money, negative when growing costs

    @property
    def oversized(self) -> bool:
        return any(a is not None and a.verdict == "oversized" for a in (self.cpu, self.memory))

    @property
    def undersized(self) -> bool:
        return any(a is not None and a.verdict == "undersized" for a in (self.cpu, self.memory))


@dataclass(frozen=True)
class _Demand:
    value: stats.Float64Array
    covered: stats.IntArray
    source: list[str]


def right_size(
    vms: Sequence[VMRecord],
    batch: MetricBatch | None,
    rates: RateCard,
    params: RightSizingParams | None = None,
    hosts: Sequence[HostRecord] = (),
) -> list[RightSizing | InsufficientData]:
    """A recommendation (or InsufficientData) for every powered-on VM."""
    params = params or RightSizingParams()
    running = [vm for vm in vms if vm.powered_on]
    rows = batch.rows() if batch is not None else {}
    out: list[RightSizing | InsufficientData] = [
        InsufficientData(vm.uuid, vm.name, DETECTOR_NAME, "no metrics for this VM")
        for vm in running
        if vm.uuid not in rows
    ]
    measured = [vm for vm in running if vm.uuid in rows]
    if batch is None or not measured:
        return out
    idx = np.array([rows[vm.uuid] for vm in measured], dtype=np.int64)
    core_mhz = {h.name: h.core_mhz for h in hosts if h.core_mhz}
    cpu = _cpu_demand(batch, idx, measured, core_mhz, params)
    mem = _memory_demand(batch, idx, params)
    for i, vm in enumerate(measured):
        out.append(_advise(vm, i, cpu, mem, batch, rates, params))
    return out


def _cpu_demand(
    batch: MetricBatch,
    idx: stats.IntArray,
    vms: Sequence[VMRecord],
    core_mhz: Mapping[str, float],
    params: RightSizingParams,
) -> _Demand:
    """Demand in vCPUs. Percentiles commute with a positive per-VM scale, so the statistic
    is taken on the raw series and scaled afterwards (no full-size temporary)."""
    if batch.cpu_pct is not None:
        vcpus = np.array([vm.vcpus for vm in vms], dtype=np.float64)
        d = _statistic(stats.take_rows(batch.cpu_pct, idx), batch, params, "cpu_pct", len(vms))
        return _Demand(d.value * vcpus / 100.0, d.covered, d.source)
    if batch.cpu_mhz is None:
        empty = np.full((len(vms), batch.samples), np.nan, dtype=np.float32)
        return _statistic(empty, batch, params, "none", len(vms))
    mhz = np.array([core_mhz.get(vm.host or "", np.nan) for vm in vms], dtype=np.float64)
    d = _statistic(stats.take_rows(batch.cpu_mhz, idx), batch, params, "cpu_mhz/core_mhz", len(vms))
    return _Demand(d.value / mhz, d.covered, d.source)


def _memory_demand(batch: MetricBatch, idx: stats.IntArray, params: RightSizingParams) -> _Demand:
    n = len(idx)
    value = np.full(n, np.nan)
    covered = np.zeros(n, dtype=np.int64)
    source = ["none"] * n
    for name in MEMORY_SOURCES:
        series = batch.memory_mib.get(name)
        if series is None:
            continue
        d = _statistic(stats.take_rows(series, idx), batch, params, name, n)
        take = (covered < params.min_days) & (d.covered >= params.min_days)
        value = np.where(take, d.value, value)
        covered = np.where(take, d.covered, np.maximum(covered, d.covered))
        source = [name if t else s for t, s in zip(take, source, strict=True)]
    return _Demand(value, covered, source)


def _statistic(
    demand: FloatArray, batch: MetricBatch, params: RightSizingParams, source: str, n: int
) -> _Demand:
    spd = 86400 // batch.step_s
    days = stats.tail_days(demand, spd, params.window_days)
    min_samples = math.ceil(params.min_day_coverage * spd)
    covered = (stats.valid_count(days) >= min_samples).sum(axis=1).astype(np.int64)
    flat = days.reshape(days.shape[0], -1)
    if params.mode is RightSizeMode.conservative:
        value = stats.row_max(flat)
    elif params.mode is RightSizeMode.moderate:
        value = stats.row_quantile(flat, 0.95)
    else:
        value = stats.median_of_daily_peaks(days, min_samples)
    return _Demand(value, covered, [source] * n)


def _advise(
    vm: VMRecord,
    i: int,
    cpu: _Demand,
    mem: _Demand,
    batch: MetricBatch,
    rates: RateCard,
    params: RightSizingParams,
) -> RightSizing | InsufficientData:
    cpu_advice, cpu_note = _cpu_advice(vm, i, cpu, params)
    mem_advice, mem_note = _memory_advice(vm, i, mem, params)
    if cpu_advice is None and mem_advice is None:
        return InsufficientData(vm.uuid, vm.name, DETECTOR_NAME, f"{cpu_note}; {mem_note}")
    new_vcpus = cpu_advice.recommended if cpu_advice else vm.vcpus
    new_mem = mem_advice.recommended if mem_advice else vm.memory_mib
    saving = rates.compute(vm.vcpus, vm.memory_mib) - rates.compute(new_vcpus, new_mem)
    end = batch.end
    start = max(batch.start, end - params.window_days * 86400)
    return RightSizing(
        vm_uuid=vm.uuid,
        vm_name=vm.name,
        mode=params.mode,
        headroom=params.headroom,
        window_start=epoch_to_datetime(start).isoformat(),
        window_end=epoch_to_datetime(end).isoformat(),
        cpu=cpu_advice,
        memory=mem_advice,
        cpu_note=cpu_note,
        memory_note=mem_note,
        monthly_saving=saving,
    )


def _cpu_advice(
    vm: VMRecord, i: int, d: _Demand, params: RightSizingParams
) -> tuple[ResourceAdvice | None, str]:
    if d.covered[i] < params.min_days or math.isnan(d.value[i]):
        return None, f"CPU: {d.covered[i]} covered days, {params.min_days} needed"
    demand = float(d.value[i])
    needed = demand * (1 + params.headroom)
    wanted = _floored(math.ceil(round(needed, 6)), params.min_vcpus, vm.vcpus, needed)
    verdict = _verdict(vm.vcpus, wanted)
    return ResourceAdvice(vm.vcpus, round(demand, 3), wanted, verdict, d.source[i]), ""


def _memory_advice(
    vm: VMRecord, i: int, d: _Demand, params: RightSizingParams
) -> tuple[ResourceAdvice | None, str]:
    if d.covered[i] < params.min_days or math.isnan(d.value[i]):
        return None, f"memory: no source with {params.min_days} covered days (balloon, rss, trace)"
    demand = float(d.value[i])
    step = params.memory_step_mib
    needed = demand * (1 + params.headroom)
    rounded = math.ceil(round(needed, 6) / step) * step
    wanted = _floored(rounded, params.min_memory_mib, vm.memory_mib, needed)
    verdict = _verdict(vm.memory_mib, wanted)
    return ResourceAdvice(vm.memory_mib, round(demand, 1), wanted, verdict, d.source[i]), ""


def _floored(rounded: float, floor: float, current: float, needed: float) -> float:
    """Apply the minimum size, but never grow a VM whose need fits in what it has."""
    wanted = max(floor, rounded)
    if wanted > current and needed <= current:
        return current
    return wanted


def _verdict(current: float, recommended: float) -> Verdict:
    if recommended < current:
        return "oversized"
    if recommended > current:
        return "undersized"
    return "right-sized"
