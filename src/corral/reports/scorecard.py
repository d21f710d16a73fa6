"""The five warning signs of VM sprawl (seed 000, Rick Vanover), scored on what Corral can see.

The signs: No.1 lack of policy, No.2 unmanageable updates, No.3 unmanageable
inventory, No.4 licence compliance and cost, No.5 too many systems to back up.
Each sign gets a status, the measured figures behind it and one sentence on
the data it rests on and, plainly, what today's data cannot show. When the
data cannot decide, the status is ``cannot-tell``, never a guess.

Pure: plain records in, signs out. Thresholds are named parameters with
documented defaults (``ScorecardThresholds``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from corral.engines.costing import ComplianceStatus, LicenceReport

Figure = int | float | str


class Status(StrEnum):
    ok = "ok"
    warning = "warning"
    alert = "alert"
    cannot_tell = "cannot-tell"


SEVERITY: Mapping[Status, int] = {
    Status.ok: 0,
    Status.cannot_tell: 0,
    Status.warning: 1,
    Status.alert: 2,
}


@dataclass(frozen=True)
class ScorecardThresholds:
    """When a sign turns from ok to warning to alert. Shares are fractions of the fleet's VMs."""

    policy_ok_share: float = 0.95  # every policy field (owner, purpose, lease) on >= 95% of VMs
    policy_alert_share: float = 0.75  # any field on < 75% of VMs is an alert
    patch_cycle_days: int = 30  # a VM powered off this long has missed a monthly patch cycle
    template_max_age_days: int = 180  # templates older than this deploy unpatched guests
    inventory_warning_share: float = 0.02  # VMs nobody can account for: above 2% is a warning
    inventory_alert_share: float = 0.10  # above 10% is an alert
    waste_warning_share: float = 0.10  # waste above 10% of the fleet's monthly cost: warning
    waste_alert_share: float = 0.25  # waste above 25% of it: alert
    backup_alert_share: float = 0.10  # > 10% of VMs without a protection tier is an alert
    # With a backup plan: the share of the VMs to back up that no plan protects within their
    # RPO. Any such VM (share > 0) is a warning, above 10% an alert.
    uncovered_warning_share: float = 0.0
    uncovered_alert_share: float = 0.10


@dataclass(frozen=True)
class GovernedVM:
    """The policy-relevant facts of one live VM."""

    name: str
    owner: str | None = None
    purpose: str | None = None
    expiry: datetime | None = None
    protection_tier: str | None = None
    powered_on: bool = True
    state_since: datetime | None = None
    host_reachable: bool | None = True  # None: its host was never synced
    disk_gb: float = 0.0


@dataclass(frozen=True)
class Template:
    name: str
    created_at: datetime | None = None


@dataclass(frozen=True)
class BackupCoverage:
    """The day's backup plan read for sign No.5: which VMs no schedule protects within their
    RPO, and why; the data copied a day against what the hosts' backup budgets could copy."""

    vms: int  # VMs the plan looked at
    rebuilt: int  # rebuilt from a template by policy: deliberately not backed up
    uncovered: int  # to back up, but no planned schedule meets the RPO
    changes_too_fast: int
    no_room: int  # the hosts'/datastores' budgets (or the tier's window) cannot hold it
    no_host: int
    daily_gib: float  # what every VM to back up needs copied a day, covered or not
    daily_budget_gib: float  # what the hosts' backup budgets can copy in a day
    source: str = ""

    @property
    def to_back_up(self) -> int:
        return self.vms - self.rebuilt


@dataclass(frozen=True)
class PolicyDrift:
    """The governance policy's check on the inventory (corral policy check), for sign No.1."""

    rules: int
    vms_checked: int
    vms_breaking: int
    by_rule: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ScorecardInputs:
    """Everything the five signs are measured on."""

    now: datetime
    vms: Sequence[GovernedVM]
    templates: Sequence[Template] = ()
    hosts_unreachable: int = 0
    orphaned_disks: int = 0
    orphaned_disk_gb: float = 0.0
    licences: LicenceReport | None = None
    os_known_vms: int = 0  # VMs whose guest OS is recorded (OS licences need it)
    fleet_monthly_cost: float = 0.0
    monthly_waste: float = 0.0
    currency: str = "USD"
    backup: BackupCoverage | None = None  # None: no backup plan was run
    policy: PolicyDrift | None = None  # None: no governance policy is set


@dataclass(frozen=True)
class Sign:
    number: int
    key: str
    title: str
    status: Status
    figures: Mapping[str, Figure] = field(default_factory=dict)
    based_on: str = ""


def scorecard(inputs: ScorecardInputs, limits: ScorecardThresholds | None = None) -> list[Sign]:
    """The five signs, in the seed's order."""
    limits = limits or ScorecardThresholds()
    return [
        policy_sign(inputs, limits),
        updates_sign(inputs, limits),
        inventory_sign(inputs, limits),
        licence_sign(inputs, limits),
        backup_sign(inputs, limits),
    ]


def _share(part: int, whole: int) -> float:
    return round(part / whole, 3) if whole else 0.0


def _blank(value: str | None) -> bool:
    return not (value or "").strip()


def policy_sign(inputs: ScorecardInputs, limits: ScorecardThresholds) -> Sign:
    vms, n = inputs.vms, len(inputs.vms)
    shares = {
        "with_owner_share": _share(sum(not _blank(v.owner) for v in vms), n),
        "with_purpose_share": _share(sum(not _blank(v.purpose) for v in vms), n),
        "with_lease_share": _share(sum(v.expiry is not None for v in vms), n),
    }
    complete = sum(
        not _blank(v.owner) and not _blank(v.purpose) and v.expiry is not None for v in vms
    )
    figures: dict[str, Figure] = {"vms": n, **shares, "fully_tagged_vms": complete}
    drift = inputs.policy
    if drift is not None:
        shares["policy_compliant_share"] = _share(
            drift.vms_checked - drift.vms_breaking, drift.vms_checked
        )
        figures |= {
            "policy_rules": drift.rules,
            "vms_breaking_policy": drift.vms_breaking,
            "policy_compliant_share": shares["policy_compliant_share"],
        }
    if n == 0:
        status = Status.cannot_tell
    else:
        status = _graded_low(
            min(shares.values()), limits.policy_ok_share, limits.policy_alert_share
        )
    return Sign(
        1,
        "policy",
        "Lack of policy",
        status,
        figures,
        "Based on the owner, purpose and lease (expiry) recorded on each VM. The hypervisor cannot "
        "see inside guests, so the consistency of admin rights, antivirus, encryption and network "
        "settings the seed names is not shown."
        + (
            " With a governance policy set, the share of VMs that keep every one of its rules "
            "('corral policy check' lists the others) counts as well."
            if drift is not None
            else ""
        ),
    )


def updates_sign(inputs: ScorecardInputs, limits: ScorecardThresholds) -> Sign:
    cycle = timedelta(days=limits.patch_cycle_days)
    stale = sum(
        1
        for v in inputs.vms
        if not v.powered_on and v.state_since is not None and inputs.now - v.state_since >= cycle
    )
    old_age = timedelta(days=limits.template_max_age_days)
    old = [t for t in inputs.templates if t.created_at and inputs.now - t.created_at >= old_age]
    figures: dict[str, Figure] = {
        f"powered_off_over_{limits.patch_cycle_days}d": stale,
        "templates": len(inputs.templates),
        f"templates_older_than_{limits.template_max_age_days}d": len(old),
        "templates_of_unknown_age": sum(t.created_at is None for t in inputs.templates),
    }
    return Sign(
        2,
        "updates",
        "Unmanageable updates",
        Status.cannot_tell,
        figures,
        "Guest patch levels are invisible to the hypervisor, so this sign cannot be scored; the "
        f"counts are VMs powered off for {limits.patch_cycle_days}+ days (they missed every patch "
        f"cycle since) and templates older than {limits.template_max_age_days} days (they deploy "
        "unpatched guests).",
    )


def inventory_sign(inputs: ScorecardInputs, limits: ScorecardThresholds) -> Sign:
    vms, n = inputs.vms, len(inputs.vms)
    unowned = sum(_blank(v.owner) or _blank(v.purpose) for v in vms)
    unseen = sum(v.host_reachable is not True for v in vms)
    unaccounted = sum(
        _blank(v.owner) or _blank(v.purpose) or v.host_reachable is not True for v in vms
    )
    figures: dict[str, Figure] = {
        "vms": n,
        "without_owner_or_purpose": unowned,
        "orphaned_disks": inputs.orphaned_disks,
        "orphaned_disk_gb": round(inputs.orphaned_disk_gb, 1),
        "vms_on_unreachable_hosts": unseen,
        "hosts_unreachable": inputs.hosts_unreachable,
        "unaccounted_share": _share(unaccounted, n),
    }
    if n == 0 and not inputs.orphaned_disks:
        status = Status.cannot_tell
    else:
        status = _graded_high(
            _share(unaccounted, n), limits.inventory_warning_share, limits.inventory_alert_share
        )
        if status is Status.ok and (inputs.orphaned_disks or inputs.hosts_unreachable):
            status = Status.warning
    return Sign(
        3,
        "inventory",
        "Unmanageable inventory",
        status,
        figures,
        "Based on the synced inventory: VMs without an owner or purpose, volumes no VM uses, and "
        "VMs whose host did not answer its last sync (their facts may be stale). VMs on "
        "hypervisors Corral is not connected to cannot be counted.",
    )


def licence_sign(inputs: ScorecardInputs, limits: ScorecardThresholds) -> Sign:
    usage = inputs.licences.usage if inputs.licences else ()
    moves = inputs.licences.suggestions if inputs.licences else ()
    over = [u.product for u in usage if u.status is ComplianceStatus.over]
    near = [u.product for u in usage if u.status is ComplianceStatus.warn]
    waste_share = (
        round(inputs.monthly_waste / inputs.fleet_monthly_cost, 3)
        if inputs.fleet_monthly_cost
        else 0.0
    )
    figures: dict[str, Figure] = {
        "over_deployed_products": ", ".join(over) or "none",
        "near_limit_products": ", ".join(near) or "none",
        "untracked_products": sum(u.status is ComplianceStatus.untracked for u in usage),
        "cheaper_licensing_monthly": round(sum(s.monthly_saving for s in moves), 2),
        "waste_share_of_cost": waste_share,
        "vms_with_known_os": inputs.os_known_vms,
    }
    if not inputs.fleet_monthly_cost and not usage:
        status = Status.cannot_tell
    else:
        status = _graded_high(waste_share, limits.waste_warning_share, limits.waste_alert_share)
        status = max(status, _licence_status(over, near, moves), key=SEVERITY.__getitem__)
    os_note = (
        "no VM has its guest OS recorded, so OS licences are not counted"
        if inputs.os_known_vms == 0
        else f"OS licences are counted for the {inputs.os_known_vms} VMs whose guest OS is recorded"
    )
    return Sign(
        4,
        "licence_cost",
        "Licence compliance and cost",
        status,
        figures,
        "Based on the cost model's prices and entitlement counts and the measured waste; "
        f"{os_note}, and entitlements are what the cost model says, not a licence server's count.",
    )


def _licence_status(over: Sequence[str], near: Sequence[str], moves: Sequence[object]) -> Status:
    if over:
        return Status.alert
    return Status.warning if near or moves else Status.ok


def backup_sign(inputs: ScorecardInputs, limits: ScorecardThresholds) -> Sign:
    if inputs.backup is not None:
        return _planned_backup_sign(inputs.backup, limits)
    vms, n = inputs.vms, len(inputs.vms)
    untiered = sum(_blank(v.protection_tier) for v in vms)
    to_protect = [v for v in vms if not _blank(v.protection_tier) and v.protection_tier != "none"]
    figures: dict[str, Figure] = {
        "vms": n,
        "without_protection_tier": untiered,
        "explicitly_unprotected": sum(v.protection_tier == "none" for v in vms),
        "vms_to_back_up": len(to_protect),
        "disk_gb_to_back_up": round(sum(v.disk_gb for v in to_protect), 1),
    }
    if n == 0 or untiered == 0:
        status = Status.cannot_tell
    else:
        status = Status.alert if _share(untiered, n) > limits.backup_alert_share else Status.warning
    return Sign(
        5,
        "backup",
        BACKUP_TITLE,
        status,
        figures,
        "Based on each VM's protection tier and disk size. No backup plan was run, so whether "
        "backups fit their windows is not known yet, and with every VM tiered the sign cannot "
        "be scored.",
    )


BACKUP_TITLE = "Too many systems to back up"


def _planned_backup_sign(cov: BackupCoverage, limits: ScorecardThresholds) -> Sign:
    """Scored from the plan: warning when the share of VMs to back up that no schedule
    protects within their RPO is above ``uncovered_warning_share`` (any VM, by default),
    alert above ``uncovered_alert_share``; cannot tell when there is nothing to back up."""
    share = _share(cov.uncovered, cov.to_back_up)
    figures: dict[str, Figure] = {
        "vms": cov.vms,
        "vms_to_back_up": cov.to_back_up,
        "rebuilt_from_template": cov.rebuilt,
        "without_backup_meeting_rpo": cov.uncovered,
        "uncovered_share": share,
        "uncovered_changes_too_fast": cov.changes_too_fast,
        "uncovered_no_room": cov.no_room,
        "uncovered_no_host": cov.no_host,
        "daily_backup_gib": round(cov.daily_gib, 1),
        "daily_host_budget_gib": round(cov.daily_budget_gib, 1),
    }
    if cov.to_back_up == 0:
        status = Status.cannot_tell
    else:
        status = _graded_high(share, limits.uncovered_warning_share, limits.uncovered_alert_share)
    source = f" of the {cov.source}" if cov.source else ""
    return Sign(
        5,
        "backup",
        BACKUP_TITLE,
        status,
        figures,
        f"Based on the day's backup plan{source} under the effective backup policy: VMs whose "
        "RPO no schedule meets within the hosts' and datastores' backup budgets (changes too "
        "fast, no room, no host), VMs rebuilt from a template instead, and the data to copy a "
        "day against the hosts' budgets. Whether backups actually ran is not recorded yet.",
    )


def _graded_low(value: float, ok_at: float, alert_below: float) -> Status:
    """Higher is better: ok at or above ``ok_at``, alert below ``alert_below``."""
    if value >= ok_at:
        return Status.ok
    return Status.alert if value < alert_below else Status.warning


def _graded_high(value: float, warn_at: float, alert_at: float) -> Status:
    """Lower is better: warning above ``warn_at``, alert above ``alert_at``."""
    if value > alert_at:
        return Status.alert
    return Status.warning if value > warn_at else Status.ok


__all__ = [
    "BackupCoverage",
    "GovernedVM",
    "ScorecardInputs",
    "ScorecardThresholds",
    "Sign",
    "Status",
    "Template",
    "scorecard",
]
