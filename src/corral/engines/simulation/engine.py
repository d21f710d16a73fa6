"""The trace-driven dynamic consolidation simulator (CloudSim PlanetLab semantics).

Every ``interval_s`` the hosts are updated from the traces, energy and SLA are integrated,
idle VMs are retired, and the policy plans migrations; a migration of a VM with ``ram`` MB
lasts ``ram * 8 / migration_bandwidth_mbit`` seconds, during which the VM is on both hosts
(see :mod:`corral.engines.simulation.accounting`). Completion instants are simulated
exactly, as CloudSim does, because that is where energy and SLA change.
"""

from __future__ import annotations

import math
import time as wallclock
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from corral.engines.simulation.accounting import (
    IN,
    NORMAL,
    OUT,
    Meter,
    Placement,
    Snapshot,
    snapshot,
)
from corral.engines.simulation.lower_bound import energy_lower_bound_kwh, served_lower_bound_kwh
from corral.engines.simulation.model import (
    FloatArray,
    HostType,
    SimulationConfig,
    SimulationResult,
    VmType,
    Workload,
)
from corral.engines.simulation.policies.base import ConsolidationPolicy, Migration
from corral.engines.simulation.power import power_table
from corral.engines.simulation.view import FleetArrays, PlanningView
from corral.errors import ValidationError

HISTORY = 30


@dataclass
class _InFlight:
    source: int
    targets: list[int]
    done_at: float


def fleet_arrays(
    hosts: Sequence[HostType], vm_types: Sequence[VmType], workload: Workload
) -> FleetArrays:
    """Static arrays of a run."""
    return FleetArrays(
        host_capacity=np.array([h.mips for h in hosts], dtype=np.float64),
        host_pe_mips=np.array([h.mips_per_pe for h in hosts], dtype=np.float64),
        host_ram=np.array([h.ram_mb for h in hosts], dtype=np.float64),
        power_table=power_table(hosts),
        vm_mips=np.array([vm_types[t].mips for t in workload.vm_type], dtype=np.float64),
        vm_ram=np.array([vm_types[t].ram_mb for t in workload.vm_type], dtype=np.float64),
    )


class _Run:
    """One simulation; state lives here, the policy only sees PlanningViews."""

    def __init__(
        self,
        hosts: Sequence[HostType],
        vm_types: Sequence[VmType],
        workload: Workload,
        policy: ConsolidationPolicy,
        config: SimulationConfig,
    ) -> None:
        self.config = config
        self.policy = policy
        self.workload = workload
        self.fleet = fleet_arrays(hosts, vm_types, workload)
        n = workload.size
        self.host_of = np.full(n, -1, dtype=np.int64)
        self.lists: list[list[int]] = [[] for _ in hosts]
        self.inflight: dict[int, _InFlight] = {}
        self.history = np.zeros((n, HISTORY))
        self.meter = Meter()
        self.migrations = 0
        self.removed = 0
        self.unplaced = 0
        self.served: list[float] = []
        self.active_hosts: list[int] = []
        self.last: Snapshot | None = None
        self.last_time = 0.0

    # -- traces --------------------------------------------------------------------------------
    def utilization(self, t: float) -> FloatArray:
        """CloudSim's UtilizationModelPlanetLabInMemory: linear between 300 s samples."""
        step = self.workload.sample_seconds
        data = self.workload.util
        if t % step == 0:
            col: FloatArray = data[:, int(t) // int(step)]
            return col
        i1 = math.floor(t / step)
        i2 = math.ceil(t / step)
        d1 = data[:, i1]
        delta = (data[:, i2] - d1) / ((i2 - i1) * step)
        out: FloatArray = d1 + delta * (t - i1 * step)
        return out

    def requested(self, t: float) -> FloatArray:
        r = self.utilization(t) * self.fleet.vm_mips
        r[self.host_of < 0] = 0.0
        return r

    # -- state -----------------------------------------------------------------------------------
    def rows(self) -> Placement:
        placed = self.host_of >= 0
        moving = np.zeros(len(placed), dtype=bool)
        moving[list(self.inflight)] = True
        still = np.nonzero(placed & ~moving)[0]
        vms = [still]
        hosts = [self.host_of[still]]
        kinds = [np.full(len(still), NORMAL)]
        for vm, m in self.inflight.items():
            vms.append(np.array([vm] * (1 + len(m.targets))))
            hosts.append(np.array([m.source, *m.targets]))
            kinds.append(np.array([OUT] + [IN] * len(m.targets)))
        return Placement(
            np.concatenate(vms).astype(np.int64),
            np.concatenate(hosts).astype(np.int64),
            np.concatenate(kinds).astype(np.int64),
        )

    def observe(self, t: float, r: FloatArray) -> Snapshot:
        """A forced update at ``t``: integrate the interval since the last state."""
        snap = snapshot(self.fleet, self.rows(), r)
        if self.last is not None:
            self.meter.interval(self.fleet, self.last, snap, t - self.last_time)
            self.meter.transition(self.last, snap)
        self.last, self.last_time = snap, t
        if self.config.remove_idle_vms:
            self.retire_idle(r)
        return snap

    def settle(self, t: float, r: FloatArray) -> None:
        """Re-state at the same instant after migrations started or finished (no time passes)."""
        snap = snapshot(self.fleet, self.rows(), r)
        if self.last is not None:
            self.meter.transition(self.last, snap)
        self.last, self.last_time = snap, t
        if self.config.remove_idle_vms:
            self.retire_idle(r)

    def retire_idle(self, r: FloatArray) -> None:
        """CloudSim removes a VM for good once it requests exactly zero MIPS."""
        idle = np.nonzero((self.host_of >= 0) & (r == 0))[0]
        for vm in idle:
            if int(vm) in self.inflight:
                continue
            self.lists[int(self.host_of[vm])].remove(int(vm))
            self.host_of[vm] = -1
            self.removed += 1

    # -- phases ----------------------------------------------------------------------------------
    def create_vms(self) -> None:
        n = self.workload.size
        view = PlanningView(
            self.fleet,
            self.lists,
            self.fleet.vm_mips.copy(),
            np.zeros(self.fleet.hosts),
            step=0,
            time=0.0,
            history=self.history,
            history_len=np.zeros(n, dtype=np.int64),
            ram_binding=True,
        )
        placed = self.policy.initial_placement(view)
        for vm in range(n):
            host = int(placed[vm])
            if host >= 0:
                self.host_of[vm] = host
                self.lists[host].append(vm)
            else:
                self.unplaced += 1

    def record_history(self, t: float) -> None:
        self.history[:, 1:] = self.history[:, :-1]
        self.history[:, 0] = self.utilization(t)

    def history_len(self) -> np.ndarray:
        nonzero = self.history != 0
        last = HISTORY - 1 - np.argmax(nonzero[:, ::-1], axis=1)
        return np.where(nonzero.any(axis=1), last + 1, 0).astype(np.int64)

    def consolidate(self, step: int, t: float, r: FloatArray, snap: Snapshot) -> list[Migration]:
        view = PlanningView(
            self.fleet,
            self.lists,
            r,
            snap.utilization(self.fleet.host_capacity),
            step=step,
            time=t,
            history=self.history,
            history_len=self.history_len(),
        )
        return self.policy.optimize(view)

    def start(self, plan: list[Migration], t: float) -> None:
        bandwidth = self.config.migration_bandwidth_mbit
        for vm, target in plan:
            if self.host_of[vm] < 0:
                raise ValidationError(
                    f"policy {self.policy.name} migrated VM {vm}, which is not running."
                )
            if vm in self.inflight:
                self.inflight[vm].targets.append(target)
            elif target != self.host_of[vm]:
                seconds = self.fleet.vm_ram[vm] * 8.0 / bandwidth
                self.inflight[vm] = _InFlight(int(self.host_of[vm]), [target], t + seconds)
            else:
                continue
            self.migrations += 1

    def finish(self, vm: int) -> None:
        m = self.inflight.pop(vm)
        self.lists[m.source].remove(vm)
        target = m.targets[-1]
        self.lists[target].append(vm)
        self.host_of[vm] = target

    def complete_migrations(self) -> None:
        for done in sorted({m.done_at for m in self.inflight.values()}):
            r = self.requested(done)
            self.observe(done, r)
            for vm in [v for v, m in self.inflight.items() if m.done_at == done]:
                self.finish(vm)
            self.settle(done, r)

    def step(self, step: int, t: float) -> None:
        r = self.requested(t)
        snap = self.observe(t, r)
        self.record_history(t)
        self.served.append(float(r[self.host_of >= 0].sum()))
        self.active_hosts.append(int((snap.host_used > 0).sum()))
        plan = self.consolidate(step, t, r, snap)
        if plan:
            self.start(plan, t)
            self.settle(t, r)
            self.complete_migrations()

    def execute(self) -> None:
        cfg = self.config
        self.create_vms()
        t = cfg.start_offset_s
        step = 0
        while True:
            t += cfg.interval_s
            if t >= cfg.duration_s:
                break
            step += 1
            self.step(step, t)


def simulate(
    hosts: Sequence[HostType],
    vm_types: Sequence[VmType],
    workload: Workload,
    policy: ConsolidationPolicy,
    config: SimulationConfig | None = None,
) -> SimulationResult:
    """Run ``policy`` over one day of ``workload`` on ``hosts``; metrics as in the paper."""
    cfg = config or SimulationConfig()
    began = wallclock.perf_counter()
    run = _Run(hosts, vm_types, workload, policy, cfg)
    run.execute()
    meter = run.meter
    energy = float(meter.energy_j) / 3.6e6
    slav = meter.slatah * meter.pdm
    best = max(set(hosts), key=lambda h: h.mips / h.power_w[-1])
    served = np.array(run.served)
    return SimulationResult(
        policy=policy.name,
        day=workload.day,
        energy_kwh=energy,
        migrations=run.migrations,
        slatah_pct=float(meter.slatah) * 100.0,
        pdm_pct=float(meter.pdm) * 100.0,
        slav=float(slav),
        esv=float(energy * slav),
        overall_sla_violation_pct=float(meter.overall_violation) * 100.0,
        host_shutdowns=meter.shutdowns,
        vms=workload.size,
        vms_removed_idle=run.removed,
        vms_unplaced=run.unplaced,
        steps=len(run.served),
        mean_active_hosts=float(np.mean(run.active_hosts)) if run.active_hosts else 0.0,
        served_demand_mips_s=float(served.sum() * cfg.interval_s),
        energy_lower_bound_kwh=energy_lower_bound_kwh(workload, vm_types, best),
        served_lower_bound_kwh=served_lower_bound_kwh(served, best, cfg.interval_s),
        runtime_s=wallclock.perf_counter() - began,
    )
