"""Name the likely cause of a VM's trouble from its own, its host's and its neighbours' series.

Why these rules: from the hypervisor Corral sees what the guest cannot tell apart. A VM is
slow because the host does not run it when it wants to run (``cpu_wait_pct`` +
``cpu_steal_pct``: contention, and then the neighbours whose CPU rose are the likely cause), or
busy because it asks for more (``cpu_pct`` near its vCPUs' limit: its own demand), or it
swaps / its memory is nearly all used (memory pressure), or the host waits on disks
(``host_iowait_pct``) or a NIC carries near its line rate (saturation). Each rule compares the
mean of the last ``window`` with a threshold; the contention rule also compares each neighbour's
last ``window`` with its history before it. A slow, steady rise of used memory over days is a
leak: its Theil-Sen slope (the median of the slopes between daily means, robust to a spike) is
projected to 100 % to date the exhaustion.

Every finding carries the numbers that led to it (``evidence``), who is involved
(``culprits``), since when the condition holds in the window (``since``) and, for a leak, the
projected exhaustion. Findings are sorted by how far their measure is over its threshold.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from corral.engines.diagnosis.leak import LeakTrend, leak_trend

FloatArray = npt.NDArray[np.float64]
MIB = 1024.0 * 1024.0


class Cause(enum.StrEnum):
    own_demand = "own_demand"
    host_cpu_contention = "host_cpu_contention"
    memory_pressure = "memory_pressure"
    disk_saturation = "disk_saturation"
    network_saturation = "network_saturation"
    memory_leak = "memory_leak"


@dataclass(frozen=True)
class Series:
    """One metric's samples, oldest first (epoch seconds; NaN for a gap). Tuples or numpy
    arrays: a fleet-wide read hands over rows of its grid without copying them."""

    times: tuple[float, ...] | FloatArray
    values: tuple[float, ...] | FloatArray


@dataclass(frozen=True)
class Evidence:
    """What the engine judges: the VM's series by catalog metric name, its host's series, and
    each co-located VM's ``cpu_host_pct`` (share of all host CPUs)."""

    vm: str
    host: str
    at: float  # the end of the window, epoch seconds
    vm_metrics: Mapping[str, Series]
    host_metrics: Mapping[str, Series] = field(default_factory=dict)
    neighbours: Mapping[str, Series] = field(default_factory=dict)


@dataclass(frozen=True)
class DiagnosisConfig:
    window: float = 3600.0  # seconds judged as "now"
    contention_pct: float = 10.0  # wait + steal (% of the vCPUs' time) that is contention
    demand_pct: float = 80.0  # cpu_pct that is the VM's own demand at its limit
    swap_bytes_per_s: float = 64 * 1024.0  # swap in + out that is memory pressure
    mem_used_pct: float = 95.0  # used share of the guest's memory that is memory pressure
    iowait_pct: float = 20.0  # host iowait that is disk saturation
    nic_bytes_per_s: float = 125e6  # the NIC's line rate (1 Gbit/s) ...
    nic_share: float = 0.9  # ... and the share of it that is saturation
    culprit_share: float = 0.8  # neighbours named until they make up this share of the rise


DEFAULT_CONFIG = DiagnosisConfig()


@dataclass(frozen=True)
class Finding:
    cause: Cause
    evidence: str  # one sentence with the numbers
    severity: float  # the measure over its threshold (1 = at the threshold)
    since: float | None = None  # start of the trailing run over the threshold, epoch seconds
    culprits: tuple[str, ...] = ()  # neighbours (VM ids) or the VM itself
    exhaustion_at: float | None = None  # a leak's projected 100 %, epoch seconds


@dataclass(frozen=True)
class Diagnosis:
    vm: str
    host: str
    at: float
    window: float
    findings: tuple[Finding, ...]  # most severe first; empty when nothing is wrong

    @property
    def cause(self) -> Cause | None:
        return self.findings[0].cause if self.findings else None


def _arrays(series: Series | None) -> tuple[FloatArray, FloatArray]:
    if series is None:
        return np.zeros(0), np.zeros(0)
    return np.asarray(series.times, dtype=np.float64), np.asarray(series.values, dtype=np.float64)


def _recent(series: Series | None, at: float, window: float) -> tuple[FloatArray, FloatArray]:
    t, v = _arrays(series)
    keep = (t >= at - window) & (t < at) & np.isfinite(v)
    return t[keep], v[keep]


def _mean(v: FloatArray) -> float:
    return float(v.mean()) if len(v) else math.nan


def _since(t: FloatArray, v: FloatArray, threshold: float) -> float | None:
    """Start of the trailing run of samples at or over the threshold."""
    below = np.flatnonzero(v < threshold)
    first = int(below[-1]) + 1 if len(below) else 0
    return float(t[first]) if first < len(t) else None


def _summed(
    ev: Evidence, names: tuple[str, ...], cfg: DiagnosisConfig
) -> tuple[FloatArray, FloatArray]:
    """The sum of several of the VM's metrics over the window, on the first one's samples."""
    t0, total = _recent(ev.vm_metrics.get(names[0]), ev.at, cfg.window)
    total = total.copy()
    for name in names[1:]:
        t, v = _recent(ev.vm_metrics.get(name), ev.at, cfg.window)
        if len(t) and len(t0):
            total += np.interp(t0, t, v)
    return t0, total


def _contention(ev: Evidence, cfg: DiagnosisConfig) -> Finding | None:
    t, lost = _summed(ev, ("cpu_wait_pct", "cpu_steal_pct"), cfg)
    level = _mean(lost)
    if not level >= cfg.contention_pct:
        return None
    culprits, rise = _noisy_neighbours(ev, cfg)
    who = f"; the neighbours whose CPU rose most: {', '.join(culprits)}" if culprits else ""
    return Finding(
        Cause.host_cpu_contention,
        f"the host did not run its vCPUs {level:.0f} % of the time (wait + steal) in the "
        f"last {cfg.window / 60:.0f} min; neighbours' CPU rose by {rise:.0f} % of the host{who}",
        level / cfg.contention_pct,
        _since(t, lost, cfg.contention_pct),
        culprits,
    )


def _noisy_neighbours(ev: Evidence, cfg: DiagnosisConfig) -> tuple[tuple[str, ...], float]:
    """Neighbours whose host-CPU share rose in the window against their history, biggest
    first, until they make up ``culprit_share`` of the total rise."""
    rises: dict[str, float] = {}
    for name, series in ev.neighbours.items():
        t, v = _arrays(series)
        ok = np.isfinite(v) & (t < ev.at)
        now, before = ok & (t >= ev.at - cfg.window), ok & (t < ev.at - cfg.window)
        if now.any():
            rise = float(v[now].mean()) - (float(np.median(v[before])) if before.any() else 0.0)
            if rise > 0:
                rises[name] = rise
    total = sum(rises.values())
    named: list[str] = []
    covered = 0.0
    for name, rise in sorted(rises.items(), key=lambda kv: (-kv[1], kv[0])):
        if covered >= cfg.culprit_share * total:
            break
        named.append(name)
        covered += rise
    return tuple(named), total


def _own_demand(ev: Evidence, cfg: DiagnosisConfig) -> Finding | None:
    t, cpu = _recent(ev.vm_metrics.get("cpu_pct"), ev.at, cfg.window)
    level = _mean(cpu)
    if not level >= cfg.demand_pct:
        return None
    return Finding(
        Cause.own_demand,
        f"its vCPUs were {level:.0f} % busy in the last {cfg.window / 60:.0f} min: "
        "it asks for more CPU than it has",
        level / cfg.demand_pct,
        _since(t, cpu, cfg.demand_pct),
        (ev.vm,),
    )


def _memory_pressure(ev: Evidence, cfg: DiagnosisConfig) -> Finding | None:
    t, swap = _summed(ev, ("swap_in_bytes_per_s", "swap_out_bytes_per_s"), cfg)
    tu, used = _recent(ev.vm_metrics.get("mem_used_pct"), ev.at, cfg.window)
    swapping, full = _mean(swap), _mean(used)
    by_swap = swapping / cfg.swap_bytes_per_s if swapping >= cfg.swap_bytes_per_s else 0.0
    by_use = full / cfg.mem_used_pct if full >= cfg.mem_used_pct else 0.0
    if not (by_swap or by_use):
        return None
    parts = []
    if by_swap:
        parts.append(f"it swapped {swapping / MIB:.1f} MiB/s")
    if by_use:
        parts.append(f"{full:.0f} % of its memory was in use")
    since = _since(t, swap, cfg.swap_bytes_per_s) if by_swap else _since(tu, used, cfg.mem_used_pct)
    text = " and ".join(parts) + f" in the last {cfg.window / 60:.0f} min"
    return Finding(Cause.memory_pressure, text, max(by_swap, by_use), since, (ev.vm,))


def _disk_saturation(ev: Evidence, cfg: DiagnosisConfig) -> Finding | None:
    t, iowait = _recent(ev.host_metrics.get("host_iowait_pct"), ev.at, cfg.window)
    level = _mean(iowait)
    if not level >= cfg.iowait_pct:
        return None
    return Finding(
        Cause.disk_saturation,
        f"host {ev.host} waited on its disks {level:.0f} % of the time in the last "
        f"{cfg.window / 60:.0f} min",
        level / cfg.iowait_pct,
        _since(t, iowait, cfg.iowait_pct),
    )


def _network_saturation(ev: Evidence, cfg: DiagnosisConfig) -> Finding | None:
    limit = cfg.nic_share * cfg.nic_bytes_per_s
    best: Finding | None = None
    for name in ("net_rx_bytes_per_s", "net_tx_bytes_per_s"):
        t, rate = _recent(ev.vm_metrics.get(name), ev.at, cfg.window)
        level = _mean(rate)
        if level >= limit and (best is None or level / limit > best.severity):
            way = "received" if "rx" in name else "sent"
            mbit, line = level * 8 / 1e6, cfg.nic_bytes_per_s * 8 / 1e6
            best = Finding(
                Cause.network_saturation,
                f"it {way} {mbit:.0f} Mbit/s in the last {cfg.window / 60:.0f} min, "
                f"{mbit / line:.0%} of the NIC's {line:.0f} Mbit/s",
                level / limit,
                _since(t, rate, limit),
                (ev.vm,),
            )
    return best


def _memory_leak(ev: Evidence, cfg: DiagnosisConfig) -> Finding | None:
    t, v = _arrays(ev.vm_metrics.get("mem_used_pct"))
    keep = t < ev.at
    trend: LeakTrend | None = leak_trend(t[keep], v[keep])
    if trend is None:
        return None
    days = (trend.exhaustion_at - ev.at) / 86400.0
    return Finding(
        Cause.memory_leak,
        f"used memory grew steadily by {trend.per_day:.1f} points a day for "
        f"{trend.days:.0f} days; at this rate it is full in {max(days, 0):.1f} days",
        trend.per_day,
        trend.start,
        (ev.vm,),
        trend.exhaustion_at,
    )


RULES = (
    _contention,
    _own_demand,
    _memory_pressure,
    _disk_saturation,
    _network_saturation,
    _memory_leak,
)


def diagnose(evidence: Evidence, config: DiagnosisConfig = DEFAULT_CONFIG) -> Diagnosis:
    """Every cause whose rule holds, the most severe first (leaks last: they are slow)."""
    found = [f for rule in RULES if (f := rule(evidence, config)) is not None]
    found.sort(key=lambda f: (f.cause is Cause.memory_leak, -f.severity))
    return Diagnosis(evidence.vm, evidence.host, evidence.at, config.window, tuple(found))


def headline(diagnosis: Diagnosis, names: Mapping[str, str] | None = None) -> str:
    """One sentence a person reads first: the main cause, since when, and who causes it."""
    name = (names or {}).get
    who = f"{name(diagnosis.vm, diagnosis.vm)} on {diagnosis.host}"
    if not diagnosis.findings:
        return f"{who}: nothing wrong found in the last {diagnosis.window / 60:.0f} min"
    top = diagnosis.findings[0]
    text = f"{who}: {top.cause.value.replace('_', ' ')}"
    if top.since is not None:
        text += f" since {datetime.fromtimestamp(top.since, UTC):%Y-%m-%d %H:%M} UTC"
    others = [name(c, c) for c in top.culprits if c != diagnosis.vm]
    if others:
        text += f"; cause: {', '.join(others)}"
    if top.exhaustion_at is not None:
        text += f"; full by {datetime.fromtimestamp(top.exhaustion_at, UTC):%Y-%m-%d}"
    return text
