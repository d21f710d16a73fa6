"""Corral's consolidation policy: peak-aware packing on the most efficient hosts, with hysteresis.

Why each rule is there:

* Each VM is planned at its recent peak (the highest of its last ``window`` samples), not at
  its current request: PlanetLab loads jump between samples, and a host planned at the sum of
  peaks is rarely oversubscribed at the next sample.
* Hosts are filled up to ``target`` of capacity with the most power-efficient host type first
  (MIPS per watt at full load), so the data centre runs few, busy, efficient machines.
* A host is relieved only when its planned peak exceeds ``overload`` (above ``target``: the gap
  is the hysteresis that stops a VM bouncing back and forth), and then by the fewest
  migrations: the smallest-RAM VM whose departure alone suffices, else the largest VM first.
* At most ``max_drains`` lightly loaded hosts (planned peak under ``underload``) are emptied
  per step, least efficient and least loaded first, only when all their VMs fit elsewhere
  under ``fill``: a drain is worth its migrations only if it switches a host off.
* A VM never moves twice in one step, and a host never both gives and receives.

Defaults were chosen on 20110303 alone (a handful of trials) and then run unchanged on all
eight PlanetLab days.
"""

from __future__ import annotations

import numpy as np

from corral.engines.simulation.model import BoolArray, FloatArray, IntArray
from corral.engines.simulation.policies.base import ConsolidationPolicy, Migration, Parameter
from corral.engines.simulation.view import PlanningView


class CorralPolicy(ConsolidationPolicy):
    family = "corral"
    summary = "peak-aware best fit on efficient hosts, hysteresis, all-or-nothing drains"
    parameters = (
        Parameter("window", 3, "samples in each VM's recent-peak estimate"),
        Parameter("target", 0.95, "fill hosts up to this share of capacity (planned peaks)"),
        Parameter("overload", 1.05, "relieve a host whose planned peak exceeds this share"),
        Parameter("underload", 0.75, "drain candidates: planned peak under this share"),
        Parameter("fill", 0.9, "drained VMs may fill receivers up to this share"),
        Parameter("max_drains", 200, "hosts emptied per step at most"),
        Parameter(
            "respect_ram", 0, "1: never exceed host RAM (CloudSim's set-up does not bind RAM)"
        ),
    )

    def __init__(
        self,
        window: float = 3,
        target: float = 0.95,
        overload: float = 1.05,
        underload: float = 0.75,
        fill: float = 0.9,
        max_drains: float = 200,
        respect_ram: float = 0,
    ) -> None:
        self.window = int(window)
        self.target = target
        self.overload = overload
        self.underload = underload
        self.fill = fill
        self.max_drains = int(max_drains)
        self.respect_ram = bool(respect_ram)
        self.efficiency: FloatArray | None = None
        self._sources: dict[int, int] = {}

    # -- estimates -------------------------------------------------------------------------------
    def prepare(self, view: PlanningView) -> FloatArray:
        """Planned demand of each VM (MIPS) and the per-host sums of it."""
        if view.step == 0:
            peak = view.requested.copy()
        else:
            peak = view.history[:, : self.window].max(axis=1) * view.fleet.vm_mips
            peak = np.maximum(peak, view.requested)
        view.track_sum("peak", peak)
        table = view.fleet.power_table
        self.efficiency = view.fleet.host_capacity / table[:, -1]
        return peak

    def room(self, view: PlanningView, share: float) -> FloatArray:
        out: FloatArray = share * view.fleet.host_capacity - view.host_sum("peak")
        return out

    def best_fit(self, view: PlanningView, vm: int, share: float, banned: BoolArray) -> int:
        """Active host with the least room left after taking ``vm``; else the best empty one."""
        peak = view.vm_value("peak")[vm]
        fits = self.room(view, share) >= peak
        fits &= view.fleet.host_pe_mips >= peak
        fits &= ~banned
        if view.ram_binding or self.respect_ram:
            fits &= view.fleet.host_ram - view.ram_used >= view.fleet.vm_ram[vm]
        if view.ram_binding:
            fits &= view.available() >= view.requested[vm]
        active = fits & (view.count > 0)
        if active.any():
            left = np.where(active, self.room(view, share) - peak, np.inf)
            return int(np.argmin(left))
        empty = np.nonzero(fits & (view.count == 0))[0]
        if not len(empty):
            return -1
        assert self.efficiency is not None
        return int(empty[int(np.argmax(self.efficiency[empty]))])

    # -- creation -------------------------------------------------------------------------------
    def initial_placement(self, view: PlanningView) -> IntArray:
        """Largest request first onto the most efficient hosts (full requests, RAM binding)."""
        self.prepare(view)
        placed = np.full(len(view.requested), -1, dtype=np.int64)
        none = np.zeros(view.fleet.hosts, dtype=bool)
        for vm in np.argsort(-view.requested, kind="stable"):
            host = self.best_fit(view, int(vm), 1.0, none)
            if host >= 0:
                view.create(int(vm), host)
                placed[vm] = host
        return placed

    # -- one step ---------------------------------------------------------------------------------
    def optimize(self, view: PlanningView) -> list[Migration]:
        self.prepare(view)
        cap = view.fleet.host_capacity
        over = view.host_sum("peak") > self.overload * cap
        over |= view.req_sum > cap
        moved: set[int] = set()
        givers = over.copy()
        receivers = np.zeros(view.fleet.hosts, dtype=bool)
        plan: list[Migration] = []
        evicted = [vm for h in np.nonzero(over)[0] for vm in self.relieve(view, int(h))]
        evicted.sort(key=lambda v: -view.vm_value("peak")[v])
        for vm in evicted:
            source = self.source_of(view, vm)
            host = self.best_fit(view, vm, self.target, givers)
            if host < 0:
                view.create(vm, source)  # nowhere to go: stay
                continue
            view.create(vm, host)
            receivers[host] = True
            moved.add(vm)
            plan.append((vm, host))
        plan.extend(self.drain(view, givers | receivers, receivers, moved))
        return plan

    def source_of(self, view: PlanningView, vm: int) -> int:
        return self._sources.pop(vm)

    def relieve(self, view: PlanningView, host: int) -> list[int]:
        """Fewest VMs off ``host`` to bring its planned peak back under ``target``."""
        peak = view.vm_value("peak")
        limit = self.target * view.fleet.host_capacity[host]
        out: list[int] = []
        while view.lists[host] and (
            view.host_sum("peak")[host] > limit
            or view.req_sum[host] > view.fleet.host_capacity[host]
        ):
            vms = np.array(view.lists[host])
            excess = view.host_sum("peak")[host] - limit
            enough = vms[peak[vms] >= excess]
            if len(enough):
                vm = int(enough[int(np.argmin(view.fleet.vm_ram[enough] * 1e6 + peak[enough]))])
            else:
                vm = int(vms[int(np.argmax(peak[vms]))])
            view.destroy(vm, host)
            self._sources[vm] = host
            out.append(vm)
        return out

    def drain(
        self, view: PlanningView, busy: BoolArray, receivers: BoolArray, moved: set[int]
    ) -> list[Migration]:
        """Empty up to ``max_drains`` light hosts whose VMs all fit elsewhere under ``fill``."""
        cap = view.fleet.host_capacity
        load = view.host_sum("peak") / cap
        light = (view.count > 0) & (load < self.underload) & ~busy
        assert self.efficiency is not None
        order = np.lexsort((load, self.efficiency))  # least efficient, then least loaded
        plan: list[Migration] = []
        drained = 0
        banned = busy.copy()
        for host in order:
            h = int(host)
            if drained >= self.max_drains or not light[h] or banned[h]:
                continue
            banned[h] = True
            vms = [v for v in view.lists[h] if v not in moved]
            if len(vms) != len(view.lists[h]):
                continue
            trial = self.place_all(view, h, vms, banned)
            if trial is None:
                continue
            for vm, target in trial:
                receivers[target] = True
                banned[target] = True
                moved.add(vm)
            plan.extend(trial)
            drained += 1
        return plan

    def place_all(
        self, view: PlanningView, host: int, vms: list[int], banned: BoolArray
    ) -> list[Migration] | None:
        """Place every VM of ``host`` on active hosts under ``fill``, or undo and give up."""
        vms.sort(key=lambda v: -view.vm_value("peak")[v])
        placed: list[Migration] = []
        for vm in vms:
            target = self.best_fit(view, vm, self.fill, banned | (view.count == 0))
            if target < 0:
                for done_vm, done_host in placed:
                    view.destroy(done_vm, done_host)
                    view.create(done_vm, host)
                return None
            view.destroy(vm, host)
            view.create(vm, target)
            placed.append((vm, target))
        return placed
