"""The backup schedule: every VM's runs per day, staggered so no host or datastore is choked.

What the plan promises (checked independently by the tests):

* a scheduled VM's runs start at most its RPO apart, around the day (the last run of one day to
  the first of the next too), and each run ends before the next one starts; so the newest
  restore point is never older than the RPO plus one run's length;
* each run lasts long enough to copy the data changed since the previous run at the job's rate
  (changed bytes = the VM's change rate over the longest gap between its runs, at most its size);
* at every minute of the day, the runs on each host and each datastore together take no more than
  its backup budget at that minute, and runs of a tier with a window lie within that window;
* a VM the plan cannot hold is listed as a miss, with the reason and fixes that are each true:
  the extra bandwidth named lets it fit, the lower tier named fits as things stand.

The first full backup of each VM is not in the daily schedule (it runs once, when the VM is first
protected); the plan is the steady state of incrementals.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from corral.engines.backup.model import BackupInputs, BackupVM, IOBudget
from corral.engines.backup.policy import Effective, Policy
from corral.engines.backup.stagger import Job, fit, spacing, stagger

DAY_MINUTES = 1440
UNLIMITED = 1 << 40  # the budget of a tier window's resource inside its hours


@dataclass(frozen=True, slots=True)
class Run:
    """How one VM is backed up each day (before the start times are chosen)."""

    vm: BackupVM
    policy: Effective
    runs: int
    duration_slots: int
    mib_s: int
    gib_per_run: float
    change_source: str  # "given" (measured, or the fleet's figure) or "default"


@dataclass(frozen=True, slots=True)
class Scheduled:
    vm: str
    tier: str
    host: str
    datastore: str
    rpo_minutes: int
    runs_per_day: int
    duration_minutes: int
    mib_s: int
    gib_per_run: float
    starts: tuple[int, ...]  # minutes after midnight
    change_source: str


@dataclass(frozen=True, slots=True)
class Fix:
    """One change that would let a missed VM be planned: ``kind`` is bandwidth (``target`` a
    host or datastore, ``mib_s`` more), window (``target`` the tier), job-rate or lower-tier."""

    kind: str
    target: str
    mib_s: int
    text: str


@dataclass(frozen=True, slots=True)
class Miss:
    """A VM the plan cannot hold: the runs it would need (``runs_per_day`` of
    ``duration_minutes`` at ``mib_s``), why they do not fit, and fixes that each would do."""

    vm: str
    tier: str
    host: str
    datastore: str
    rpo_minutes: int
    runs_per_day: int
    duration_minutes: int
    mib_s: int
    gib_per_run: float
    reason: str  # "changes-too-fast" | "no-room"
    text: str
    fixes: tuple[Fix, ...]


@dataclass(frozen=True, slots=True)
class Rebuilt:
    vm: str
    tier: str
    recipe: str


@dataclass(frozen=True, slots=True)
class BackupPlan:
    slot_minutes: int
    scheduled: tuple[Scheduled, ...]
    misses: tuple[Miss, ...]
    rebuilt: tuple[Rebuilt, ...]
    #: each host's and datastore's budget and use per slot ("host:NAME" / "datastore:NAME")
    budgets: Mapping[str, tuple[int, ...]]
    used: Mapping[str, tuple[int, ...]]

    def peak_utilisation(self, prefix: str) -> float:
        """The highest share of budget used at any slot by any resource of that kind."""
        peak = 0.0
        for name, budget in self.budgets.items():
            if name.startswith(prefix):
                used = self.used[name]
                peak = max([peak, *(u / b for u, b in zip(used, budget, strict=True) if b > 0)])
        return peak


def plan_backups(inputs: BackupInputs, policy: Policy, slot_minutes: int = 5) -> BackupPlan:
    """The day's backup schedule for every VM of ``inputs`` under ``policy``."""
    if DAY_MINUTES % slot_minutes:
        raise ValueError("slot_minutes must divide a day")
    slots = DAY_MINUTES // slot_minutes
    budgets = _budgets(inputs, policy, slot_minutes)
    runs, rebuilt = [], []
    for vm in inputs.vms:
        eff = policy.for_vm(vm.name, vm.tier)
        if eff.rules.rebuild is not None:
            rebuilt.append(Rebuilt(vm.name, eff.tier, eff.rules.rebuild))
        else:
            runs.append(_run(vm, eff, policy, budgets, slots, slot_minutes))
    result = stagger([_job(r) for r in runs], budgets, slots)
    by_name = {r.vm.name: r for r in runs}
    scheduled = [_scheduled(by_name[p.name], p.starts, slot_minutes) for p in result.placed]
    misses = [
        _miss(by_name[u.name], u.reason, policy, budgets, result.residual, slots, slot_minutes)
        for u in result.unplaced
    ]
    shown = {k: v for k, v in budgets.items() if not k.startswith("window:")}
    used = {
        k: tuple(b - r for b, r in zip(v, result.residual[k], strict=True))
        for k, v in shown.items()
    }
    return BackupPlan(
        slot_minutes,
        tuple(sorted(scheduled, key=lambda s: s.vm)),
        tuple(sorted(misses, key=lambda m: m.vm)),
        tuple(rebuilt),
        shown,
        used,
    )


def host_key(name: str) -> str:
    return f"host:{name}"


def datastore_key(name: str) -> str:
    return f"datastore:{name}"


def _budgets(inputs: BackupInputs, policy: Policy, slot_minutes: int) -> dict[str, tuple[int, ...]]:
    """Each host's, datastore's and tier window's budget per slot (hosts and datastores the
    fleet gives no budget get the policy's). Budgets of the same shape are computed once."""
    minutes = range(0, DAY_MINUTES, slot_minutes)
    given = {host_key(b.name): b for b in inputs.hosts}
    given |= {datastore_key(b.name): b for b in inputs.datastores}
    default = {"host": policy.planner.host_mib_s, "datastore": policy.planner.datastore_mib_s}
    shapes: dict[tuple[int, tuple[Any, ...]], tuple[int, ...]] = {}
    out: dict[str, tuple[int, ...]] = {}
    for vm in inputs.vms:
        for key in (host_key(vm.host), datastore_key(vm.datastore)):
            if key in out:
                continue
            b = given.get(key) or IOBudget(key, default[key.partition(":")[0]])
            shape = (b.mib_s, b.windows)
            if shape not in shapes:
                shapes[shape] = tuple(b.at(m) for m in minutes)
            out[key] = shapes[shape]
    for name, tier in policy.tiers.items():
        if tier.window is not None:
            w = tier.window
            out[f"window:{name}"] = tuple(UNLIMITED if w.contains(m) else 0 for m in minutes)
    return out


def _run(
    vm: BackupVM,
    eff: Effective,
    policy: Policy,
    budgets: Mapping[str, tuple[int, ...]],
    slots: int,
    slot_minutes: int,
) -> Run:
    rpo_slots = max(1, eff.rules.rpo_minutes // slot_minutes)
    runs = max(1, math.ceil(slots / rpo_slots))
    longest_gap_min = math.ceil(slots / runs) * slot_minutes
    if vm.change_gib_per_day is not None:
        per_day, source = vm.change_gib_per_day, "given"
    else:
        per_day, source = vm.size_gib * policy.planner.change_per_day, "default"
    gib = min(vm.size_gib, per_day * longest_gap_min / DAY_MINUTES)
    rate = _rate(vm, runs, eff.rules.window is None, policy, budgets)
    duration = max(1, math.ceil(gib * 1024 / (rate * slot_minutes * 60)))
    return Run(vm, eff, runs, duration, rate, gib, source)


def _rate(
    vm: BackupVM,
    runs: int,
    all_day: bool,
    policy: Policy,
    budgets: Mapping[str, tuple[int, ...]],
) -> int:
    """The job's copy rate: the policy's, capped by the budgets its runs will meet. A VM backed
    up several times a day (no window) meets the day's lowest budget, when above zero; one
    backed up once a day can wait for the highest."""
    both = (_extremes(budgets[host_key(vm.host)]), _extremes(budgets[datastore_key(vm.datastore)]))
    cap = min(high for _, high in both)
    if runs > 1 and all_day:
        lowest = min(low for low, _ in both)
        cap = lowest if lowest > 0 else cap
    return max(1, min(policy.planner.job_mib_s, cap))


@functools.lru_cache(maxsize=4096)
def _extremes(budget: tuple[int, ...]) -> tuple[int, int]:
    """Lowest and highest budget of the day (budgets of one shape share one tuple)."""
    return min(budget), max(budget)


def _job(run: Run) -> Job:
    resources = [host_key(run.vm.host), datastore_key(run.vm.datastore)]
    if run.policy.rules.window is not None:
        resources.append(f"window:{run.policy.tier}")
    return Job(run.vm.name, tuple(resources), run.runs, run.duration_slots, run.mib_s)


def _scheduled(run: Run, starts: tuple[int, ...], slot_minutes: int) -> Scheduled:
    return Scheduled(
        run.vm.name,
        run.policy.tier,
        run.vm.host,
        run.vm.datastore,
        run.policy.rules.rpo_minutes,
        run.runs,
        run.duration_slots * slot_minutes,
        run.mib_s,
        round(run.gib_per_run, 3),
        tuple(s * slot_minutes for s in starts),
        run.change_source,
    )


def _miss(
    run: Run,
    reason: str,
    policy: Policy,
    budgets: Mapping[str, tuple[int, ...]],
    residual: Mapping[str, tuple[int, ...]],
    slots: int,
    slot_minutes: int,
) -> Miss:
    """Why the VM's runs do not fit, and the fixes that would let them, against the final plan."""
    vm = run.vm
    every = spacing(run.runs, slots) * slot_minutes
    minutes = run.duration_slots * slot_minutes
    if reason == "too-long":
        reason = "changes-too-fast"
        need = math.ceil(run.gib_per_run * 1024 / (every * 60))
        text = (
            f"{run.gib_per_run:.1f} GiB changes between runs every {every} min; at "
            f"{run.mib_s} MiB/s a run takes {minutes} min"
        )
        fixes = [
            Fix("job-rate", vm.name, need,
                f"copy at {need} MiB/s or more (the job rate, and {vm.host}'s and "
                f"{vm.datastore}'s budgets whenever its runs fall)")
        ]  # fmt: skip
    else:
        text = (
            f"no start time for {run.runs} run(s) a day of {minutes} min at {run.mib_s} MiB/s "
            f"keeps {vm.host} and {vm.datastore} within budget"
        )
        fixes = _bandwidth_fixes(run, fit(_job(run), residual, slots).extra)
    fixes += _lower_tier(run, policy, budgets, residual, slots, slot_minutes)
    return Miss(
        vm.name, run.policy.tier, vm.host, vm.datastore, run.policy.rules.rpo_minutes,
        run.runs, minutes, run.mib_s, round(run.gib_per_run, 3), reason, text, tuple(fixes),
    )  # fmt: skip


def _bandwidth_fixes(run: Run, extra: Mapping[str, int]) -> list[Fix]:
    """Every short resource's extra budget: together they let the VM fit as the plan stands."""
    fixes = []
    for resource, mib_s in sorted(extra.items()):
        if mib_s <= 0:
            continue
        kind, _, target = resource.partition(":")
        if kind == "window":
            window = run.policy.rules.window
            fixes.append(Fix("window", target, 0, f"a longer window for tier {target} ({window})"))
        else:
            text = f"{mib_s} MiB/s more on {kind} {target}"
            fixes.append(Fix("bandwidth", resource, mib_s, text))
    return fixes


def _lower_tier(
    run: Run,
    policy: Policy,
    budgets: Mapping[str, tuple[int, ...]],
    residual: Mapping[str, tuple[int, ...]],
    slots: int,
    slot_minutes: int,
) -> list[Fix]:
    """The first tier with a longer RPO under which the VM fits the plan as it stands."""
    for name, tier in sorted(policy.tiers.items(), key=lambda t: t[1].rpo_minutes):
        if tier.rebuild is not None or tier.rpo_minutes <= run.policy.rules.rpo_minutes:
            continue
        trial = _run(run.vm, Effective(run.vm.name, name, "trial", tier), policy, budgets,
                     slots, slot_minutes)  # fmt: skip
        if fit(_job(trial), residual, slots).offset is not None:
            text = f"tier {name} (RPO {tier.rpo_minutes} min, at {trial.mib_s} MiB/s)"
            return [Fix("lower-tier", name, trial.mib_s, text)]
    return []
