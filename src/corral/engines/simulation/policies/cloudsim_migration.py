"""CloudSim 3.0.3's PowerVmAllocationPolicyMigrationAbstract, as a base for its policies.

Each step: find overloaded hosts (the subclass's detector), take VMs off them with Minimum
Migration Time selection (smallest RAM first) until they are no longer overloaded, place
those VMs with Power-Aware Best Fit Decreasing (PABFD: the host whose power rises least,
never one that the detector would call overloaded), then empty the least-utilized hosts one
by one when all their VMs fit elsewhere. CloudSim's quirks are kept on purpose because the
published figures depend on them: hosts that received VMs from overloaded hosts may still be
emptied in the same step, and power is compared with the host's measured (not planned) use.
"""

from __future__ import annotations

from abc import abstractmethod

import numpy as np

from corral.engines.simulation.model import BoolArray, IntArray
from corral.engines.simulation.policies.base import ConsolidationPolicy, Migration
from corral.engines.simulation.view import PlanningView


class CloudSimMigrationPolicy(ConsolidationPolicy):
    """Overload detector + MMT selection + PABFD placement + underload draining."""

    def prepare(self, view: PlanningView) -> None:
        """Track whatever per-host sums the detector needs (none by default)."""

    @abstractmethod
    def overloaded(self, view: PlanningView, hosts: IntArray) -> BoolArray:
        """Detector verdict for ``hosts`` in the current plan."""

    @abstractmethod
    def overloaded_with(self, view: PlanningView, vm: int, hosts: IntArray) -> BoolArray:
        """Detector verdict for ``hosts`` if ``vm`` were added to each."""

    # -- placement -------------------------------------------------------------------------
    def pabfd(self, view: PlanningView, vm: int, excluded: BoolArray, check: bool = True) -> int:
        """The suitable, not-then-overloaded host whose power increases least (-1: none)."""
        hosts = np.nonzero(view.suitable(vm) & ~excluded)[0]
        if check and len(hosts):
            busy = view.allocated()[hosts] != 0
            if busy.any():
                bad = np.zeros(len(hosts), dtype=bool)
                bad[busy] = self.overloaded_with(view, vm, hosts[busy])
                hosts = hosts[~bad]
        if not len(hosts):
            return -1
        increase = view.power_after(vm, hosts) - view.power_now[hosts]
        return int(hosts[int(np.argmin(increase))])

    def initial_placement(self, view: PlanningView) -> IntArray:
        """PABFD in VM order with full requests; the overload check is skipped because
        CloudSim's VMs request nothing before their cloudlets start, so it can never fire."""
        self.prepare(view)
        none = np.zeros(view.fleet.hosts, dtype=bool)
        placed = np.full(len(view.requested), -1, dtype=np.int64)
        for vm in range(len(view.requested)):
            host = self.pabfd(view, vm, none, check=False)
            if host >= 0:
                view.create(vm, host)
                placed[vm] = host
        return placed

    # -- one consolidation step --------------------------------------------------------------
    def optimize(self, view: PlanningView) -> list[Migration]:
        self.prepare(view)
        over = self.overloaded(view, np.arange(view.fleet.hosts))
        leaving = self.select_from_overloaded(view, np.nonzero(over)[0])
        leaving.sort(key=lambda v: -view.requested[v])
        plan: list[Migration] = []
        for vm in leaving:
            host = self.pabfd(view, vm, over)
            if host >= 0:
                view.create(vm, host)
                plan.append((vm, host))
        return plan + self.drain_underloaded(view, over)

    def select_from_overloaded(self, view: PlanningView, hosts: IntArray) -> list[int]:
        """Minimum Migration Time: smallest-RAM VM first, until the host is not overloaded."""
        leaving: list[int] = []
        for host in hosts:
            h = int(host)
            while view.lists[h]:
                vms = view.lists[h]
                vm = vms[int(np.argmin(view.fleet.vm_ram[vms]))]
                leaving.append(vm)
                view.destroy(vm, h)
                if not self.overloaded(view, np.array([h]))[0]:
                    break
        return leaving

    def drain_underloaded(self, view: PlanningView, over: BoolArray) -> list[Migration]:
        """Empty the least-utilized hosts, each only if all its VMs find a place."""
        util = view.host_utilization
        off = util == 0
        not_source = over | off
        not_target = over | off
        plan: list[Migration] = []
        while not not_source.all():
            eligible = ~not_source & (util > 0) & (util < 1) & (view.count > 0)
            if not eligible.any():
                break
            host = int(np.argmin(np.where(eligible, util, np.inf)))
            not_source[host] = True
            not_target[host] = True
            moved = self.place_all(view, list(view.lists[host]), not_target)
            for _, target in moved:
                not_source[target] = True
            plan.extend(moved)
        return plan

    def place_all(self, view: PlanningView, vms: list[int], excluded: BoolArray) -> list[Migration]:
        """PABFD for every VM in decreasing request order, or nothing at all."""
        vms.sort(key=lambda v: -view.requested[v])
        moved: list[Migration] = []
        for vm in vms:
            host = self.pabfd(view, vm, excluded)
            if host < 0:
                for placed_vm, placed_host in moved:
                    view.destroy(placed_vm, placed_host)
                return []
            view.create(vm, host)
            moved.append((vm, host))
        return moved
