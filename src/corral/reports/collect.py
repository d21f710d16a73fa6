"""What the sprawl report shows, collected: the inventory's queries joined to an analysis.

Collection and rendering are apart so every interface can show the same
report: ``collect_report`` reads the inventory (chargeback, licences, waste
over time, the five-signs scorecard, reclamation cases) into a typed
``ReportData``; ``corral.reports.html`` renders it and reads nothing else. The
analysis itself comes from ``corral.services.sprawl`` (the caller), so this
module runs no engine on metrics and opens no metrics store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import select

from corral.engines.costing import (
    ChargebackRow,
    CostModel,
    Dimension,
    LicenceReport,
    chargeback,
    licence_report,
    price_fleet,
)
from corral.engines.reclaim import State
from corral.engines.sprawl import Category, HostRecord, SprawlAnalysis, VMRecord
from corral.inventory.service import Inventory
from corral.reclaim.views import realized_saving
from corral.reports.history import MonthWaste, load_histories, month_ends, waste_over_time
from corral.reports.scorecard import (
    BackupCoverage,
    GovernedVM,
    PolicyDrift,
    ScorecardInputs,
    Sign,
    Template,
    scorecard,
)
from corral.services import backup as backup_service
from corral.services.fleet import FleetSnapshot
from corral.services.records import FleetRecords
from corral.store import models as m

if TYPE_CHECKING:
    from corral.metrics.store.base import MetricsStore


@dataclass(frozen=True)
class ReclaimedCase:
    """One reclamation case as the report shows it; money in ``currency``."""

    id: int
    vm: str
    vm_uuid: str
    state: State
    category: str
    owner: str | None
    currency: str
    monthly_cost: float
    realized: float  # saved so far
    saving_now_monthly: float


@dataclass(frozen=True)
class ReportData:
    """Everything the report shows, as plain data."""

    generated_at: datetime
    analysis: SprawlAnalysis
    departments: Mapping[str, str | None]  # VM uuid -> department
    chargeback: Sequence[ChargebackRow]
    licences: LicenceReport
    history: Sequence[MonthWaste]
    signs: Sequence[Sign]
    metrics_days: int
    title: str = "Corral sprawl report"
    reclamation: Sequence[ReclaimedCase] = ()


def collect_report(
    inv: Inventory,
    model: CostModel,
    fleet: FleetRecords,
    analysis: SprawlAnalysis,
    days: int,
    backup: BackupCoverage | None = None,
    policy: PolicyDrift | None = None,
) -> ReportData:
    """Returns the report of ``analysis`` (run on ``fleet``, the live inventory's records over
    ``days`` of metrics): chargeback, licences, waste over time, scorecard, reclamation cases.
    ``backup`` (from ``backup_coverage``) scores sign No.5; without it that sign reads tiers."""
    now = fleet.now or inv.clock()
    vms, hosts = fleet.vms, fleet.hosts
    histories, orphans = load_histories(inv)
    firsts = [h.first_seen for h in histories if h.first_seen is not None]
    history = (
        waste_over_time(histories, orphans, month_ends(min(firsts), now), model, hosts=hosts)
        if firsts
        else []
    )
    licences = licence_report(vms, hosts, model)
    inputs = _scorecard_inputs(inv, analysis, licences, now)
    signs = scorecard(replace(inputs, backup=backup, policy=policy))
    data = assemble_report(vms, hosts, model, analysis, history, signs, now, days, licences)
    return replace(data, reclamation=reclamation_cases(inv, now))


def backup_coverage(
    snapshot: FleetSnapshot,
    policy: backup_service.Policy,
    metrics: MetricsStore | None = None,
    now: datetime | None = None,
) -> BackupCoverage:
    """Plans the day's backups of ``snapshot`` (the live inventory or a fleet file) under
    ``policy`` (measured change rates from ``metrics`` when given) and reads the plan as the
    evidence of sign No.5: who is not covered and why, and the daily volume against budget."""
    when = None if now is None else now.timestamp()
    result = backup_service.plan(snapshot, policy, metrics, when)
    cov = backup_service.coverage(result)
    reasons = [u.reason for u in cov.uncovered]
    plan = result.plan
    runs = [(s.gib_per_run, s.runs_per_day) for s in plan.scheduled]
    runs += [(m.gib_per_run, m.runs_per_day) for m in plan.misses]
    budget_mib = sum(sum(b) for k, b in plan.budgets.items() if k.startswith("host:"))
    return BackupCoverage(
        vms=cov.vms,
        rebuilt=cov.rebuilt,
        uncovered=len(cov.uncovered),
        changes_too_fast=reasons.count("changes-too-fast"),
        no_room=reasons.count("no-room"),
        no_host=reasons.count("no-host"),
        daily_gib=sum(gib * n for gib, n in runs),
        daily_budget_gib=budget_mib * plan.slot_minutes * 60 / 1024,
        source=snapshot.source,
    )


def reclamation_cases(inv: Inventory, now: datetime) -> list[ReclaimedCase]:
    """Returns every reclamation case with the money it saved by ``now`` (oldest first)."""
    with inv.db.session() as s:
        rows = s.scalars(select(m.ReclaimCase).order_by(m.ReclaimCase.id)).all()
        return [_reclaimed(c, now) for c in rows]


def _reclaimed(c: m.ReclaimCase, now: datetime) -> ReclaimedCase:
    saved, rate = realized_saving(c, now)
    return ReclaimedCase(
        id=c.id,
        vm=c.vm_name,
        vm_uuid=c.vm_uuid,
        state=State(c.state),
        category=c.category,
        owner=c.owner,
        currency=c.currency,
        monthly_cost=c.monthly_cost,
        realized=saved,
        saving_now_monthly=rate,
    )


def assemble_report(
    vms: Sequence[VMRecord],
    hosts: Sequence[HostRecord],
    model: CostModel,
    analysis: SprawlAnalysis,
    history: Sequence[MonthWaste],
    signs: Sequence[Sign],
    now: datetime,
    metrics_days: int,
    licences: LicenceReport | None = None,
) -> ReportData:
    """Join the analysis of ``vms`` with their chargeback and licences (pure)."""
    costs = price_fleet(vms, hosts, model)
    return ReportData(
        generated_at=now,
        analysis=analysis,
        departments={vm.uuid: vm.department for vm in vms},
        chargeback=chargeback(vms, costs, Dimension.department),
        licences=licences or licence_report(vms, hosts, model),
        history=history,
        signs=signs,
        metrics_days=metrics_days,
    )


def _scorecard_inputs(
    inv: Inventory, analysis: SprawlAnalysis, licences: LicenceReport, now: datetime
) -> ScorecardInputs:
    orphans = [f for f in analysis.findings if f.category is Category.orphaned_disk]
    with inv.db.session() as s:
        status = {h.id: h.status for h in s.scalars(select(m.Host))}
        rows = list(s.scalars(select(m.VM).where(m.VM.deleted_at.is_(None))))
        vms = [_governed(r, status) for r in rows if not r.is_template]
        templates = [Template(r.name, r.created_at) for r in rows if r.is_template]
    return ScorecardInputs(
        now=now,
        vms=vms,
        templates=templates,
        hosts_unreachable=sum(st != "ok" for st in status.values()),
        orphaned_disks=len(orphans),
        orphaned_disk_gb=sum(float(f.evidence.measures.get("size_gb", 0.0)) for f in orphans),
        licences=licences,
        os_known_vms=0,  # libvirt does not report the guest OS; the inventory has no OS column
        fleet_monthly_cost=analysis.fleet_monthly_cost,
        monthly_waste=analysis.monthly_waste + analysis.rightsizing_monthly_saving,
        currency=analysis.currency,
    )


def _governed(row: m.VM, host_status: Mapping[int, str]) -> GovernedVM:
    reachable = None if row.host_id is None else host_status.get(row.host_id) == "ok"
    return GovernedVM(
        name=row.name,
        owner=row.owner,
        purpose=row.purpose,
        expiry=(
            datetime.combine(row.expires_on, datetime.min.time(), tzinfo=UTC)
            if row.expires_on
            else None
        ),
        protection_tier=row.protection_tier,
        powered_on=row.state in ("running", "paused"),
        state_since=row.state_since,
        host_reachable=reachable,
        disk_gb=(row.disk_bytes or 0) / 1024**3,
    )


__all__ = [
    "ReclaimedCase",
    "ReportData",
    "assemble_report",
    "backup_coverage",
    "collect_report",
    "reclamation_cases",
]
