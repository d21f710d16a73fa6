"""Independent checks of what the backup planner promises (corral/engines/backup/plan.py's
docstring), minute by minute, from the inputs and the plan alone: nothing here calls the
planner's scheduling code or trusts its verdicts.

The promise, restated:
1. every VM is scheduled, missed or (its tier says rebuild) rebuilt: exactly one of these;
2. a scheduled VM's runs start at most its RPO apart around the day, and each run ends before
   the next starts;
3. each run is long enough to copy what changed since the previous one (the VM's change rate
   over the longest gap, at most its size) at the VM's rate, and that rate is at most the job
   rate;
4. at every minute the runs on each host and each datastore take at most its budget, and a
   windowed tier's runs lie within the window;
5. a miss's claim is true: ``changes-too-fast`` - the runs its RPO needs cannot copy the change
   within their spacing; ``no-room`` - no evenly spaced start fits the budgets the plan leaves;
   a bandwidth fix makes it fit; a lower tier fits; a job-rate fix shortens the runs enough.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from corral.engines.backup import (
    BackupInputs,
    BackupPlan,
    BackupVM,
    Fix,
    Miss,
    Policy,
    Scheduled,
    Window,
)

DAY = 1440


def host_budget(inputs: BackupInputs, policy: Policy, name: str, minute: int) -> int:
    for b in inputs.hosts:
        if b.name == name:
            return b.at(minute)
    return policy.planner.host_mib_s


def store_budget(inputs: BackupInputs, policy: Policy, name: str, minute: int) -> int:
    for b in inputs.datastores:
        if b.name == name:
            return b.at(minute)
    return policy.planner.datastore_mib_s


def changed_gib(vm: BackupVM, policy: Policy, gap_minutes: int) -> float:
    per_day = vm.change_gib_per_day
    if per_day is None:
        per_day = vm.size_gib * policy.planner.change_per_day
    return min(vm.size_gib, per_day * gap_minutes / DAY)


def copies(gib: float, mib_s: int, minutes: int) -> bool:
    return minutes * 60 * mib_s >= gib * 1024 - 1e-6


def usage(plan: BackupPlan) -> dict[str, list[int]]:
    """MiB/s in use per host ('host:X') and datastore ('datastore:Y') at every minute."""
    use: dict[str, list[int]] = {}
    for s in plan.scheduled:
        for key in (f"host:{s.host}", f"datastore:{s.datastore}"):
            row = use.setdefault(key, [0] * DAY)
            for start in s.starts:
                for m in range(start, start + s.duration_minutes):
                    row[m % DAY] += s.mib_s
    return use


def gaps(starts: tuple[int, ...]) -> list[int]:
    ordered = sorted(starts)
    return [((ordered[(i + 1) % len(ordered)] - t) % DAY) or DAY for i, t in enumerate(ordered)]


def violations(inputs: BackupInputs, policy: Policy, plan: BackupPlan) -> list[str]:
    """Every broken promise (1-4) and every untrue miss (5), as sentences."""
    bad: list[str] = []
    vms = {v.name: v for v in inputs.vms}
    seen = [s.vm for s in plan.scheduled] + [m.vm for m in plan.misses]
    seen += [r.vm for r in plan.rebuilt]
    if sorted(seen) != sorted(vms):
        bad.append(f"VMs not accounted for exactly once: {sorted(set(vms) ^ set(seen))}")
    for r in plan.rebuilt:
        if policy.for_vm(r.vm, vms[r.vm].tier).rules.rebuild is None:
            bad.append(f"{r.vm} rebuilt though its tier backs it up")
    for s in plan.scheduled:
        bad += _scheduled(s, vms[s.vm], policy)
    use = usage(plan)
    for key, row in use.items():
        kind, _, name = key.partition(":")
        budget = host_budget if kind == "host" else store_budget
        for m in range(DAY):
            if row[m] > budget(inputs, policy, name, m):
                bad.append(f"{key} over budget at minute {m}: {row[m]}")
                break
    for miss in plan.misses:
        bad += _miss(miss, vms[miss.vm], inputs, policy, plan, use)
    return bad


def _scheduled(s: Scheduled, vm: BackupVM, policy: Policy) -> list[str]:
    bad = []
    rules = policy.for_vm(vm.name, vm.tier).rules
    g = gaps(s.starts)
    dur, rate = s.duration_minutes, s.mib_s
    if max(g) > rules.rpo_minutes:
        bad.append(f"{vm.name}: runs {max(g)} min apart, RPO {rules.rpo_minutes}")
    if dur > min(g):
        bad.append(f"{vm.name}: a {dur}-min run overlaps the next (gap {min(g)})")
    if not copies(changed_gib(vm, policy, max(g)), rate, dur):
        bad.append(f"{vm.name}: {dur} min at {rate} MiB/s cannot copy its change")
    if rate > policy.planner.job_mib_s:
        bad.append(f"{vm.name}: rate {rate} above the job rate")
    if rules.window is not None:
        for start in s.starts:
            if not all(rules.window.contains(m) for m in range(start, start + dur)):
                bad.append(f"{vm.name}: run at {start} leaves the window {rules.window}")
    return bad


def evenly_spaced(offset: int, runs: int, slot: int) -> list[int]:
    """Run starts (minutes) of ``runs`` runs spread evenly over the day on a ``slot`` grid."""
    slots = DAY // slot
    return [((offset + j * slots // runs) % slots) * slot for j in range(runs)]


def fits_somewhere(
    vm: BackupVM,
    runs: int,
    minutes: int,
    rate: int,
    window: Window | None,
    inputs: BackupInputs,
    policy: Policy,
    plan: BackupPlan,
    use: Mapping[str, list[int]],
    extra: Mapping[str, int] | None = None,
) -> bool:
    """Whether some evenly spaced set of starts keeps every minute within budget (and window)."""
    extra = extra or {}
    host = use.get(f"host:{vm.host}", [0] * DAY)
    store = use.get(f"datastore:{vm.datastore}", [0] * DAY)
    room_h = [
        host_budget(inputs, policy, vm.host, m) + extra.get(f"host:{vm.host}", 0) - host[m]
        for m in range(DAY)
    ]
    room_d = [
        store_budget(inputs, policy, vm.datastore, m)
        + extra.get(f"datastore:{vm.datastore}", 0)
        - store[m]
        for m in range(DAY)
    ]
    for offset in range(DAY // plan.slot_minutes):
        minutes_used = [
            m % DAY
            for s in evenly_spaced(offset, runs, plan.slot_minutes)
            for m in range(s, s + minutes)
        ]
        if all(room_h[m] >= rate and room_d[m] >= rate for m in minutes_used) and (
            window is None or all(window.contains(m) for m in minutes_used)
        ):
            return True
    return False


def _miss(
    m: Miss,
    vm: BackupVM,
    inputs: BackupInputs,
    policy: Policy,
    plan: BackupPlan,
    use: Mapping[str, list[int]],
) -> list[str]:
    bad = []
    rules = policy.for_vm(vm.name, vm.tier).rules
    slot = plan.slot_minutes
    slots = DAY // slot
    runs = m.runs_per_day
    longest, shortest = math.ceil(slots / runs) * slot, (slots // runs) * slot
    if longest > max(rules.rpo_minutes, slot):
        bad.append(f"{vm.name}: the miss's {runs} runs would not meet the RPO anyway")
    change = changed_gib(vm, policy, longest)
    rate = m.mib_s
    need = max(slot, math.ceil(change * 1024 / (rate * 60) / slot) * slot)
    if m.reason == "changes-too-fast":
        if need <= shortest:
            bad.append(f"{vm.name}: said too fast, but {need} min fit a {shortest}-min gap")
    elif fits_somewhere(vm, runs, need, rate, rules.window, inputs, policy, plan, use):
        bad.append(f"{vm.name}: said no room, but a start time fits")
    for fix in m.fixes:
        bad += _fix(fix, m, vm, inputs, policy, plan, use, need, shortest)
    return bad


def _fix(
    fix: Fix,
    m: Miss,
    vm: BackupVM,
    inputs: BackupInputs,
    policy: Policy,
    plan: BackupPlan,
    use: Mapping[str, list[int]],
    need: int,
    shortest: int,
) -> list[str]:
    kind = fix.kind
    rules = policy.for_vm(vm.name, vm.tier).rules
    slot = plan.slot_minutes
    if kind == "job-rate":
        longest = math.ceil(DAY / slot / m.runs_per_day) * slot
        if not copies(changed_gib(vm, policy, longest), fix.mib_s, shortest):
            return [f"{vm.name}: job rate {fix.mib_s} would still not copy the change in time"]
    if kind == "bandwidth" and not any(f.kind == "window" for f in m.fixes):
        extras = {f.target: f.mib_s for f in m.fixes if f.kind == "bandwidth"}
        args = (vm, m.runs_per_day, need, m.mib_s, rules.window, inputs, policy, plan, use)
        if not fits_somewhere(*args, extras):
            return [f"{vm.name}: the bandwidth fixes {extras} do not make it fit"]
    if kind == "lower-tier":
        tier = policy.tiers[fix.target]
        if tier.rpo_minutes <= rules.rpo_minutes:
            return [f"{vm.name}: tier {fix.target} is not lower"]
        slots = DAY // plan.slot_minutes
        runs = max(1, math.ceil(slots / max(1, tier.rpo_minutes // plan.slot_minutes)))
        longest = math.ceil(slots / runs) * plan.slot_minutes
        rate = fix.mib_s
        minutes = max(
            plan.slot_minutes,
            math.ceil(changed_gib(vm, policy, longest) * 1024 / (rate * 60) / plan.slot_minutes)
            * plan.slot_minutes,
        )
        ok = minutes <= (slots // runs) * plan.slot_minutes and fits_somewhere(
            vm, runs, minutes, rate, tier.window, inputs, policy, plan, use
        )
        if not ok:
            return [f"{vm.name}: tier {fix.target} would not fit either"]
    return []
