"""Staggered patch windows (S4): each VM patched once a week inside the maintenance hours,
with at most so many VMs of one host, and never two VMs of one anti-affinity group, down at once.

The same scheduler as backups (``stagger``): one run per week, the patch's length, taking one
"patching place" of its host and of each of its groups; the budget is zero outside the window.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from corral.engines.backup.policy import Window
from corral.engines.backup.stagger import Job, stagger

WEEK_MINUTES = 7 * 1440
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class PatchVM:
    name: str
    host: str
    groups: tuple[str, ...] = ()  # anti-affinity groups: members never patched together
    minutes: int = 30


@dataclass(frozen=True, slots=True)
class PatchRules:
    window: Window = field(default_factory=lambda: Window(1 * 60, 5 * 60))
    days: tuple[str, ...] = DAYS
    per_host: int = 1  # VMs of one host patched at the same time
    slot_minutes: int = 15


@dataclass(frozen=True, slots=True)
class PatchSlot:
    vm: str
    host: str
    day: str
    start_minute: int  # of that day
    minutes: int


@dataclass(frozen=True, slots=True)
class PatchPlan:
    slots: tuple[PatchSlot, ...]
    unplaced: tuple[str, ...]  # VMs that do not fit the week's windows


def plan_patches(vms: Sequence[PatchVM], rules: PatchRules = PatchRules()) -> PatchPlan:
    """One patch slot a week per VM within the rules, or the VM listed as not fitting."""
    step = rules.slot_minutes
    slots = WEEK_MINUTES // step
    open_at = [
        DAYS[(m // 1440) % 7] in rules.days and rules.window.contains(m % 1440)
        for m in range(0, WEEK_MINUTES, step)
    ]
    budgets: dict[str, list[int]] = {}
    jobs = []
    for vm in vms:
        resources = [f"host:{vm.host}", *(f"group:{g}" for g in vm.groups)]
        for r in resources:
            cap = rules.per_host if r.startswith("host:") else 1
            budgets.setdefault(r, [cap if ok else 0 for ok in open_at])
        jobs.append(Job(vm.name, tuple(resources), 1, math.ceil(vm.minutes / step), 1))
    result = stagger(jobs, budgets, slots)
    by_name = {vm.name: vm for vm in vms}
    placed = tuple(
        PatchSlot(
            p.name,
            by_name[p.name].host,
            DAYS[(p.starts[0] * step) // 1440],
            (p.starts[0] * step) % 1440,
            math.ceil(by_name[p.name].minutes / step) * step,
        )
        for p in result.placed
    )
    return PatchPlan(
        tuple(sorted(placed, key=lambda s: (DAYS.index(s.day), s.start_minute, s.vm))),
        tuple(sorted(u.name for u in result.unplaced)),
    )
