"""Run every detector and right-sizing on one fleet snapshot and total the money.

Why totals are careful: each VM counts once (dedupe), governance findings (no
owner, no purpose) are money at risk, not waste, and right-sizing savings are
only counted for VMs that are not already to be reclaimed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from corral.engines.costing import CostModel, VMCost, price_fleet, rate_card
from corral.engines.sprawl.dedupe import dedupe
from corral.engines.sprawl.detectors import DetectionContext, Detector, build_detectors
from corral.engines.sprawl.model import (
    GOVERNANCE,
    Category,
    Finding,
    HostRecord,
    InsufficientData,
    MetricBatch,
    Outcome,
    VMRecord,
    Volume,
)
from corral.engines.sprawl.rightsizing import RightSizing, RightSizingParams, right_size


@dataclass(frozen=True)
class CategoryTotal:
    category: Category
    count: int
    monthly: float
    is_waste: bool


@dataclass(frozen=True)
class Reclaimable:
    """Capacity the waste findings would free: running VMs' vCPUs and memory, all storage."""

    vcpus: int
    memory_gib: float
    storage_gb: float


@dataclass(frozen=True)
class SprawlAnalysis:
    """Deduplicated findings, undecided cases, right-sizing, and the money."""

    currency: str
    vms: int
    findings: tuple[Finding, ...]
    insufficient: tuple[InsufficientData, ...]
    rightsizing: tuple[RightSizing, ...]
    rightsizing_insufficient: tuple[InsufficientData, ...]
    fleet_monthly_cost: float
    totals: tuple[CategoryTotal, ...] = field(default=())
    reclaimable: Reclaimable = field(default_factory=lambda: Reclaimable(0, 0.0, 0.0))

    @property
    def monthly_waste(self) -> float:
        return sum(t.monthly for t in self.totals if t.is_waste)

    @property
    def monthly_at_risk(self) -> float:
        return sum(t.monthly for t in self.totals if not t.is_waste)

    @property
    def rightsizing_monthly_saving(self) -> float:
        """Savings of shrinking VMs that no waste finding reclaims already."""
        reclaimed = {f.subject for f in self.findings if f.category not in GOVERNANCE}
        return sum(
            r.monthly_saving
            for r in self.rightsizing
            if r.vm_uuid not in reclaimed and r.monthly_saving > 0
        )

    def summary(self) -> dict[str, Any]:
        """Headline figures, plain types, for the CLI and reports."""
        waste = self.monthly_waste + self.rightsizing_monthly_saving
        return {
            "currency": self.currency,
            "vms": self.vms,
            "fleet_monthly_cost": round(self.fleet_monthly_cost, 2),
            "reclaimable_monthly": round(self.monthly_waste, 2),
            "rightsizing_monthly": round(self.rightsizing_monthly_saving, 2),
            "waste_monthly": round(waste, 2),
            "waste_yearly": round(12 * waste, 2),
            "governance_at_risk_monthly": round(self.monthly_at_risk, 2),
            "reclaimable_vcpus": self.reclaimable.vcpus,
            "reclaimable_memory_gib": round(self.reclaimable.memory_gib, 1),
            "reclaimable_storage_gb": round(self.reclaimable.storage_gb, 1),
            "oversized_vms": sum(1 for r in self.rightsizing if r.oversized),
            "undersized_vms": sum(1 for r in self.rightsizing if r.undersized),
            "insufficient_data": len(self.insufficient) + len(self.rightsizing_insufficient),
            "by_category": {
                t.category.value: {"count": t.count, "monthly": round(t.monthly, 2)}
                for t in self.totals
            },
        }


def analyse(
    vms: Sequence[VMRecord],
    now: datetime,
    model: CostModel,
    *,
    hosts: Sequence[HostRecord] = (),
    volumes: Sequence[Volume] = (),
    metrics: MetricBatch | None = None,
    detectors: Sequence[Detector] | None = None,
    rightsizing: RightSizingParams | None = None,
) -> SprawlAnalysis:
    """Detect, dedupe, right-size and total one fleet snapshot."""
    costs = price_fleet(vms, hosts, model)
    ctx = DetectionContext(vms, now, costs, model, hosts, volumes, metrics)
    outcomes = [o for d in (detectors or build_detectors()) for o in d.detect(ctx)]
    sized = right_size(vms, metrics, rate_card(model), rightsizing, hosts)
    return assemble(vms, model, costs, volumes, outcomes, sized)


def assemble(
    vms: Sequence[VMRecord],
    model: CostModel,
    costs: Mapping[str, VMCost],
    volumes: Sequence[Volume],
    outcomes: Sequence[Outcome],
    sized: Sequence[RightSizing | InsufficientData],
) -> SprawlAnalysis:
    """Dedupe the detectors' outcomes (in detector order) and total the money: the last step
    of ``analyse``, shared with the chunked analysis so both total alike."""
    findings = dedupe(o for o in outcomes if isinstance(o, Finding))
    return SprawlAnalysis(
        currency=model.currency,
        vms=len(vms),
        findings=tuple(findings),
        insufficient=tuple(o for o in outcomes if isinstance(o, InsufficientData)),
        rightsizing=tuple(r for r in sized if isinstance(r, RightSizing)),
        rightsizing_insufficient=tuple(r for r in sized if isinstance(r, InsufficientData)),
        fleet_monthly_cost=sum(c.total for c in costs.values()),
        totals=_totals(findings),
        reclaimable=_reclaimable(findings, vms, volumes),
    )


def _totals(findings: Sequence[Finding]) -> tuple[CategoryTotal, ...]:
    out = []
    for cat in Category:
        chosen = [f for f in findings if f.category is cat]
        if chosen:
            monthly = sum(f.monthly_cost_held for f in chosen)
            out.append(CategoryTotal(cat, len(chosen), monthly, cat not in GOVERNANCE))
    return tuple(out)


def _reclaimable(
    findings: Sequence[Finding], vms: Sequence[VMRecord], volumes: Sequence[Volume]
) -> Reclaimable:
    by_uuid = {vm.uuid: vm for vm in vms}
    by_path = {vol.path: vol for vol in volumes}
    vcpus, mem_mib, storage = 0, 0.0, 0.0
    for f in findings:
        if f.category in GOVERNANCE:
            continue
        if f.category is Category.orphaned_disk:
            storage += by_path[f.subject].size_gb if f.subject in by_path else 0.0
        elif f.category is Category.snapshot_sprawl:
            storage += float(f.evidence.measures.get("offending_gb", 0.0))
        elif f.subject in by_uuid:
            vm = by_uuid[f.subject]
            if vm.powered_on:
                vcpus, mem_mib = vcpus + vm.vcpus, mem_mib + vm.memory_mib
            storage += vm.disk_gb + vm.snapshot_gb
    return Reclaimable(vcpus, mem_mib / 1024.0, storage)
