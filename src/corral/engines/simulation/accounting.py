"""What the hosts and VMs get at one instant, and the metrics integrated between instants.

This follows CloudSim 3.0.3's HostDynamicWorkload / VmSchedulerTimeSharedOverSubscription:
a VM's request is capped at one PE; an oversubscribed host scales every VM by
capacity / demand (floored); a VM migrating out gets 90 % of its share on the source (and the
source still counts it in full for power), a VM migrating in costs its target 10 % of its
request and is counted as requested but not served there (so the target is "in violation").
Energy between two instants is the trapezoid of the power curve, and a host whose
utilization was zero at the start of an interval draws nothing (it is switched off).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from corral.engines.simulation.model import BoolArray, FloatArray, IntArray
from corral.engines.simulation.power import power_at
from corral.engines.simulation.view import FleetArrays

NORMAL, OUT, IN = 0, 1, 2


@dataclass(frozen=True)
class Placement:
    """Who sits where at an instant: one row per (VM, host) pair, with its role."""

    vm: IntArray
    host: IntArray
    kind: IntArray


@dataclass(frozen=True)
class Snapshot:
    """Host and VM state entries at one instant (CloudSim's state-history entries)."""

    host_used: FloatArray
    host_requested: FloatArray
    vm_allocated: FloatArray
    vm_requested: FloatArray
    vm_migrating_out: BoolArray

    def utilization(self, capacity: FloatArray) -> FloatArray:
        u = self.host_used / capacity
        out: FloatArray = np.where((u > 1.0) & (u < 1.01), 1.0, u)
        return out


def snapshot(fleet: FleetArrays, rows: Placement, requested: FloatArray) -> Snapshot:
    """Allocate MIPS the way CloudSim's over-subscribing time-shared scheduler does."""
    hosts = fleet.hosts
    r = requested[rows.vm]
    cap = np.minimum(r, fleet.host_pe_mips[rows.host])
    need = np.where(rows.kind == IN, cap * 0.1, cap)
    total = np.bincount(rows.host, weights=need, minlength=hosts)
    over = total > fleet.host_capacity
    scale = np.divide(fleet.host_capacity, total, out=np.ones(hosts), where=over)[rows.host]
    over_r = over[rows.host]
    alloc = np.where(
        rows.kind == OUT,
        np.where(over_r, np.floor(cap * scale * 0.9), cap * 0.9),
        np.where(
            rows.kind == IN,
            np.where(over_r, np.floor(cap * 0.1 * scale), cap * 0.1),
            np.where(over_r, np.floor(cap * scale), cap),
        ),
    )
    counted = np.where(rows.kind == OUT, alloc / 0.9, alloc)
    used = np.bincount(rows.host, weights=counted, minlength=hosts).astype(np.float64)
    host_req = np.bincount(rows.host, weights=r, minlength=hosts).astype(np.float64)
    own = rows.kind != IN
    n = len(requested)
    vm_alloc = np.zeros(n)
    vm_req = np.zeros(n)
    vm_out = np.zeros(n, dtype=bool)
    vm_alloc[rows.vm[own]] = alloc[own]
    vm_req[rows.vm[own]] = r[own]
    vm_out[rows.vm[own]] = rows.kind[own] == OUT
    return Snapshot(used, host_req, vm_alloc, vm_req, vm_out)


@dataclass
class Meter:
    """Integrates energy and the SLA metrics over the run."""

    energy_j: float = 0.0
    active_host_s: float = 0.0
    violation_host_s: float = 0.0
    requested_mips_s: float = 0.0
    allocated_mips_s: float = 0.0
    migration_shortfall_mips_s: float = 0.0
    shutdowns: int = 0

    def interval(self, fleet: FleetArrays, start: Snapshot, end: Snapshot, seconds: float) -> None:
        """Account ``seconds`` that begin in state ``start`` and end in state ``end``."""
        if seconds <= 0:
            return
        cap = fleet.host_capacity
        u0 = start.utilization(cap)
        on = u0 > 0
        if on.any():
            idx = np.nonzero(on)[0]
            p0 = power_at(fleet.power_table, u0[idx], idx)
            p1 = power_at(fleet.power_table, end.utilization(cap)[idx], idx)
            self.energy_j += float(((p0 + (p1 - p0) / 2.0) * seconds).sum())
        active = start.host_used > 0
        self.active_host_s += seconds * int(active.sum())
        short = active & (start.host_used < start.host_requested)
        self.violation_host_s += seconds * int(short.sum())
        self.requested_mips_s += seconds * float(start.vm_requested.sum())
        self.allocated_mips_s += seconds * float(start.vm_allocated.sum())
        gap = start.vm_requested - start.vm_allocated
        migrating = start.vm_migrating_out & (gap > 0)
        self.migration_shortfall_mips_s += seconds * float(gap[migrating].sum())

    def transition(self, before: Snapshot, after: Snapshot) -> None:
        """Count hosts switched off between two successive states."""
        self.shutdowns += int(((before.host_used > 0) & (after.host_used <= 0)).sum())

    @property
    def slatah(self) -> float:
        return self.violation_host_s / self.active_host_s if self.active_host_s else 0.0

    @property
    def pdm(self) -> float:
        return (
            self.migration_shortfall_mips_s / self.requested_mips_s
            if self.requested_mips_s
            else 0.0
        )

    @property
    def overall_violation(self) -> float:
        if not self.requested_mips_s:
            return 0.0
        return (self.requested_mips_s - self.allocated_mips_s) / self.requested_mips_s
