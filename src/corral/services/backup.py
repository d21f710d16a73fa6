"""Backup planning on a fleet: the effective policy per VM, the day's schedule, and coverage.

Reads the policy file (the ``backup_policy`` setting, else ``$CORRAL_HOME/backup.yaml`` when it
exists, else the built-in tiers), the fleet (a fleet file, a REST document or the live
inventory) and, when a metrics store is given, each VM's measured disk writes as its change
rate; runs the pure engines and returns typed results the CLI and the REST API both render.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from corral import safeload
from corral.config import Settings
from corral.domain.metrics import EntityKind, Stat
from corral.engines.backup import (
    BackupInputs,
    BackupPlan,
    BackupVM,
    Effective,
    Miss,
    Policy,
    parse_policy,
    plan_backups,
)
from corral.engines.backup.fleetdoc import backup_inputs
from corral.engines.backup.patch import DAYS, PatchPlan, PatchRules, PatchVM, plan_patches
from corral.engines.backup.policy import parse_window
from corral.errors import ConfigError, NotFoundError, ValidationError
from corral.services.fleet import FleetSnapshot

__all__ = [
    "DAYS",
    "Coverage",
    "PatchResult",
    "PlanResult",
    "PlanSummary",
    "Policy",
    "PolicyView",
    "Uncovered",
    "coverage",
    "load_policy",
    "patch_windows",
    "plan",
    "policy_view",
    "recorded_metrics",
]

if TYPE_CHECKING:
    from corral.metrics.store.base import MetricsStore

#: Days of disk-write history averaged into a VM's change rate.
CHANGE_HISTORY_DAYS = 7
GIB = 1024**3


def policy_path(settings: Settings) -> Path:
    return settings.backup_policy or settings.home / "backup.yaml"


def load_policy(settings: Settings) -> Policy:
    """The policy file named by the settings; the built-in tiers when none is set or present."""
    path = policy_path(settings)
    if settings.backup_policy is None and not path.is_file():
        return Policy()
    if not path.is_file():
        raise NotFoundError(
            f"backup policy {path} does not exist; fix CORRAL_BACKUP_POLICY or create the file."
        )
    data = safeload.load_file(path, "backup policy", ConfigError)
    try:
        return parse_policy(data, f"backup policy {path}")
    except ValidationError as exc:
        raise ConfigError(exc.message) from None


# -- the effective policy ---------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TierRow:
    tier: str
    rpo_minutes: int
    rto_minutes: int
    restore_from: str
    consistency: str
    retention: dict[str, int]
    window: str | None
    rebuild: str | None


@dataclass(frozen=True, slots=True)
class VMPolicyRow:
    vm: str
    tier: str
    origin: str  # "vm override", "tier" or "default tier"
    rpo_minutes: int
    rto_minutes: int
    restore_from: str
    consistency: str
    backed_up: bool


@dataclass(frozen=True, slots=True)
class PolicyView:
    source: str
    default_tier: str
    tiers: tuple[TierRow, ...]
    vms: tuple[VMPolicyRow, ...]

    def to_dict(self) -> dict[str, Any]:
        return _plain(asdict(self))


def policy_view(policy: Policy, snapshot: FleetSnapshot | None = None) -> PolicyView:
    """Every tier's rules, and (with a fleet) the policy each VM gets and where it came from."""
    tiers = tuple(
        TierRow(
            name,
            t.rpo_minutes,
            t.rto_minutes,
            t.where.value,
            t.consistency.value,
            asdict(t.retention),
            None if t.window is None else str(t.window),
            t.rebuild,
        )
        for name, t in policy.tiers.items()
    )
    vms: tuple[VMPolicyRow, ...] = ()
    if snapshot is not None:
        inputs, _ = _inputs(snapshot, policy)
        vms = tuple(_vm_row(policy.for_vm(v.name, v.tier)) for v in inputs.vms)
    return PolicyView(policy.source, policy.default_tier, tiers, vms)


def _vm_row(eff: Effective) -> VMPolicyRow:
    r = eff.rules
    return VMPolicyRow(
        eff.vm, eff.tier, eff.origin, r.rpo_minutes, r.rto_minutes, r.where.value,
        r.consistency.value, r.backed_up,
    )  # fmt: skip


# -- the plan ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PlanSummary:
    vms: int
    scheduled: int
    misses: int
    rebuilt: int
    without_host: int
    hosts: int
    datastores: int
    peak_host_utilisation: float
    peak_datastore_utilisation: float
    measured_change_rates: int
    seconds: float


@dataclass(frozen=True, slots=True)
class PlanResult:
    summary: PlanSummary
    plan: BackupPlan
    without_host: tuple[str, ...]
    notes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self.plan)
        doc.pop("budgets")
        doc.pop("used")
        for s in doc["scheduled"]:
            s["starts"] = [_clock(m) for m in s["starts"]]
        return _plain(
            {"summary": asdict(self.summary), **doc, "without_host": self.without_host,
             "notes": self.notes}
        )  # fmt: skip


def plan(
    snapshot: FleetSnapshot,
    policy: Policy,
    metrics: MetricsStore | None = None,
    now: float | None = None,
) -> PlanResult:
    """The day's backup schedule for the fleet; measured change rates override the default."""
    inputs, without_host = _inputs(snapshot, policy)
    measured = 0
    if metrics is not None:
        inputs, measured = with_measured_change(inputs, snapshot, metrics, now or time.time())
    started = time.perf_counter()
    result = plan_backups(inputs, policy)
    seconds = time.perf_counter() - started
    summary = PlanSummary(
        vms=len(inputs.vms) + len(without_host),
        scheduled=len(result.scheduled),
        misses=len(result.misses),
        rebuilt=len(result.rebuilt),
        without_host=len(without_host),
        hosts=sum(k.startswith("host:") for k in result.budgets),
        datastores=sum(k.startswith("datastore:") for k in result.budgets),
        peak_host_utilisation=round(result.peak_utilisation("host:"), 3),
        peak_datastore_utilisation=round(result.peak_utilisation("datastore:"), 3),
        measured_change_rates=measured,
        seconds=round(seconds, 3),
    )
    return PlanResult(summary, result, without_host, _notes(policy, inputs, measured))


def _inputs(snapshot: FleetSnapshot, policy: Policy) -> tuple[BackupInputs, tuple[str, ...]]:
    document = snapshot.document if isinstance(snapshot.document, Mapping) else {}
    defaults = (policy.planner.host_mib_s, policy.planner.datastore_mib_s)
    return backup_inputs(document, snapshot.source, defaults)


def with_measured_change(
    inputs: BackupInputs, snapshot: FleetSnapshot, metrics: MetricsStore, now: float
) -> tuple[BackupInputs, int]:
    """Each VM's change rate from its average disk writes over the last week, where recorded.

    Writes overstate change (a block rewritten twice counts twice), so the plan errs long.
    """
    uuids = _uuids(snapshot)
    end = int(now)
    start = end - CHANGE_HISTORY_DAYS * 86400
    rates = metrics.per_entity(EntityKind.vm, "disk_write_bytes_per_s", start, end, Stat.avg)
    vms, measured = [], 0
    for vm in inputs.vms:
        rate = rates.get(uuids.get(vm.name, vm.name))
        if rate is not None and vm.change_gib_per_day is None:
            vm = _with_change(vm, rate * 86400 / GIB)
            measured += 1
        vms.append(vm)
    return BackupInputs(tuple(vms), inputs.hosts, inputs.datastores), measured


def _with_change(vm: BackupVM, gib_per_day: float) -> BackupVM:
    return BackupVM(vm.name, vm.host, vm.datastore, vm.size_gib, vm.tier, gib_per_day)


def _uuids(snapshot: FleetSnapshot) -> dict[str, str]:
    document = snapshot.document if isinstance(snapshot.document, Mapping) else {}
    return {
        str(v["name"]): str(v["uuid"])
        for v in document.get("vms") or []
        if isinstance(v, Mapping) and v.get("uuid") and v.get("name")
    }


def _notes(policy: Policy, inputs: BackupInputs, measured: int) -> tuple[str, ...]:
    given = sum(v.change_gib_per_day is not None for v in inputs.vms) - measured
    guessed = len(inputs.vms) - given - measured
    notes = [
        f"change rates: {measured} measured (disk writes, last {CHANGE_HISTORY_DAYS} days), "
        f"{given} from the fleet, {guessed} assumed at {policy.planner.change_per_day:.0%} "
        "of the disk per day",
        "the plan is the daily steady state of incrementals; each VM's first full backup "
        "runs once, outside it",
    ]
    return tuple(notes)


# -- coverage ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Uncovered:
    vm: str
    tier: str | None
    reason: str  # changes-too-fast | no-room | no-host | rebuild
    text: str


@dataclass(frozen=True, slots=True)
class Coverage:
    """Which VMs have no planned backup meeting their RPO, and why; ``rebuilt`` ones are
    deliberately not backed up (their tier records a rebuild recipe) and counted apart."""

    vms: int
    covered: int
    uncovered: tuple[Uncovered, ...]
    rebuilt: int

    def to_dict(self) -> dict[str, Any]:
        return _plain(asdict(self))


def coverage(result: PlanResult) -> Coverage:
    """The plan read as coverage: the VMs no schedule protects within their RPO."""
    missing = [_uncovered(m) for m in result.plan.misses]
    missing += [
        Uncovered(name, None, "no-host", "not placed on a host, so nothing can back it up")
        for name in result.without_host
    ]
    return Coverage(
        vms=result.summary.vms,
        covered=len(result.plan.scheduled),
        uncovered=tuple(sorted(missing, key=lambda u: u.vm)),
        rebuilt=len(result.plan.rebuilt),
    )


def _uncovered(miss: Miss) -> Uncovered:
    fixes = "; ".join(f.text for f in miss.fixes) or "no fix found"
    return Uncovered(miss.vm, miss.tier, miss.reason, f"{miss.text} (would fix: {fixes})")


def _plain(value: dict[str, Any]) -> dict[str, Any]:
    """Tuples as lists, all the way down: the JSON shape the CLI prints and the API sends."""
    return {k: _listed(v) for k, v in value.items()}


def _listed(value: Any) -> Any:
    if isinstance(value, dict):
        return _plain(value)
    if isinstance(value, list | tuple):
        return [_listed(v) for v in value]
    return value


def _clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def recorded_metrics(settings: Settings) -> MetricsStore | None:
    """The settings' metrics store when it holds history (a DuckDB file that exists, or a
    server); None otherwise, so planning never creates an empty store as a side effect."""
    from urllib.parse import urlsplit

    from corral.metrics.store import open_store

    parts = urlsplit(settings.metrics_url)
    if parts.scheme == "duckdb" and not Path(parts.netloc + parts.path).is_file():
        return None
    return open_store(settings.metrics_url)


# -- patch windows ----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PatchResult:
    rules: PatchRules
    plan: PatchPlan

    def to_dict(self) -> dict[str, Any]:
        return _plain(
            {
                "window": str(self.rules.window),
                "days": list(self.rules.days),
                "per_host": self.rules.per_host,
                "slots": [{**asdict(s), "start": _clock(s.start_minute)} for s in self.plan.slots],
                "unplaced": self.plan.unplaced,
            }
        )


def patch_windows(
    snapshot: FleetSnapshot,
    window: str = "01:00-05:00",
    days: Sequence[str] = DAYS,
    per_host: int = 1,
    minutes: int = 30,
) -> PatchResult:
    """A weekly patch slot per VM: staggered per host, never two of an anti-affinity group."""
    bad = sorted(set(days) - set(DAYS))
    if bad:
        raise ValidationError(f"day {bad[0]!r} is not one of {', '.join(DAYS)}.")
    if per_host < 1 or minutes < 1:
        raise ValidationError("per-host and minutes must be at least 1.")
    rules = PatchRules(parse_window(window, "patch"), tuple(days), per_host)
    vms = [
        PatchVM(v.name, v.host, tuple(sorted(v.anti_affinity)), minutes)
        for v in snapshot.fleet.vms
        if v.host is not None
    ]
    return PatchResult(rules, plan_patches(vms, rules))
