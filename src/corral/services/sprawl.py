"""Sprawl services: the live analysis and report, inventory findings, the seed scenario, Bitbrains.

Every interface calls these, never the engines directly, so the CLI, the REST
API and the demo show the same findings and the same money for the same
inputs. Inputs are plain: a cost model (the settings'), fleet records
(``FleetSnapshot.records`` of ``corral.services.fleet``), the live inventory
and the metrics store for the live analysis and report, and parameters.
Results are typed; money is in the model's currency per month.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from corral.engines.costing import CostModel
from corral.engines.policy import Policy as GovernancePolicy
from corral.engines.sprawl import (
    DETECTORS,
    Category,
    CategoryTotal,
    Finding,
    InsufficientData,
    MetricBatch,
    RightSizeMode,
    RightSizingParams,
    SprawlAnalysis,
    VMRecord,
    analyse,
    build_detectors,
)
from corral.engines.sprawl.bitbrains import load_bitbrains
from corral.engines.sprawl.chunked import merge, plan_fleet
from corral.engines.sprawl.model import epoch_to_datetime
from corral.engines.sprawl.scenario import SOURCES, ScenarioAssumptions, run_scenario
from corral.inventory.service import Inventory
from corral.metrics.store.base import MetricsStore
from corral.reports.collect import ReportData, backup_coverage, collect_report
from corral.services.backup import Policy
from corral.services.distributed import AnalysisRun, StoreReader, run_chunks
from corral.services.fleet import live_fleet
from corral.services.policy import PolicyService
from corral.services.records import FleetRecords, live_records, metric_batch

#: Detectors that read only the inventory (every one but ``idle``, which needs metrics).
INVENTORY_DETECTORS: tuple[str, ...] = tuple(name for name in DETECTORS if name != "idle")


@dataclass(frozen=True)
class SprawlSummary:
    """The headline figures of an analysis (each VM counted once; money rounded to cents)."""

    currency: str
    vms: int
    fleet_monthly_cost: float
    reclaimable_monthly: float
    rightsizing_monthly: float
    waste_monthly: float
    waste_yearly: float
    governance_at_risk_monthly: float
    reclaimable_vcpus: int
    reclaimable_memory_gib: float
    reclaimable_storage_gb: float
    oversized_vms: int
    undersized_vms: int
    insufficient_data: int
    categories: tuple[CategoryTotal, ...]

    @classmethod
    def of(cls, analysis: SprawlAnalysis) -> SprawlSummary:
        s = analysis.summary()
        fields = {k: v for k, v in s.items() if k != "by_category"}
        return cls(**fields, categories=analysis.totals)


@dataclass(frozen=True)
class SprawlFindings:
    """Deduplicated findings and the cases a detector could not decide."""

    currency: str
    findings: tuple[Finding, ...]
    insufficient: tuple[InsufficientData, ...]


@dataclass(frozen=True)
class Assumption:
    """One assumption of the seed scenario, with where its value comes from."""

    name: str
    value: float
    source: str


@dataclass(frozen=True)
class ScenarioResult:
    """The seed scenario's fleet analysed: ``vms`` VMs built from ``seed``."""

    seed: int
    summary: SprawlSummary
    analysis: SprawlAnalysis
    assumptions: tuple[Assumption, ...]


@dataclass(frozen=True)
class BitbrainsSummary:
    """Counts and money of a Bitbrains run: idle VMs, oversized CPU/memory, undecided cases."""

    vms: int
    idle_vms: int
    idle_undecided: int
    oversized_vms: int
    oversized_cpu: int
    oversized_memory: int
    undersized_vms: int
    rightsizing_undecided: int
    currency: str
    fleet_monthly_cost: float
    idle_monthly: float
    rightsizing_monthly: float
    waste_monthly: float
    waste_yearly: float


@dataclass(frozen=True)
class BitbrainsResult:
    """A Bitbrains month analysed (the trace has no disks: ``assumed_disk_gb`` per VM)."""

    month: str
    window_start: datetime
    window_end: datetime
    assumed_disk_gb: float
    summary: BitbrainsSummary
    analysis: SprawlAnalysis


@dataclass(frozen=True)
class DetectorParameter:
    """A detector and one of its parameters (``parameter`` None: it has none)."""

    detector: str
    category: Category
    parameter: str | None
    default: float | None
    meaning: str


def live_analysis(
    inv: Inventory,
    store: MetricsStore | None,
    model: CostModel,
    *,
    days: int = 30,
    now: datetime | None = None,
    run: AnalysisRun | None = None,
) -> SprawlAnalysis:
    """Returns the analysis of the live inventory with ``days`` of metrics history (none when
    ``store`` is None: idle and right-sizing then say they cannot decide), chunked as ``run``
    says (the settings' ``AnalysisRun.of``; default: 1,000 VMs a chunk, in this process)."""
    fleet = live_records(inv, now)
    return _live_analysis(fleet, store, model, days, run)


def fleet_analysis(
    fleet: FleetRecords,
    store: MetricsStore | None,
    model: CostModel,
    *,
    days: int = 30,
    run: AnalysisRun | None = None,
) -> SprawlAnalysis:
    """Returns the analysis of fleet records already read (a page that also prices them reads
    the inventory once)."""
    return _live_analysis(fleet, store, model, days, run)


def sprawl_report(
    inv: Inventory,
    store: MetricsStore | None,
    model: CostModel,
    *,
    days: int = 30,
    backup_policy: Policy | None = None,
    run: AnalysisRun | None = None,
    governance: GovernancePolicy | None = None,
) -> ReportData:
    """Returns the live analysis with chargeback, licences, waste over time, the five-signs
    scorecard and the reclamation cases: everything the report shows. Sign No.5 is scored
    from the day's backup plan under ``backup_policy`` (the built-in tiers when None), and
    sign No.1 also from the inventory's drift from the ``governance`` policy when one is set."""
    fleet = live_records(inv)
    analysis = _live_analysis(fleet, store, model, days, run)
    backup = backup_coverage(live_fleet(inv), backup_policy or Policy(), store, fleet.now)
    drift = None if governance is None else PolicyService(inv.db, governance, inv.clock).drift()
    return collect_report(inv, model, fleet, analysis, days, backup, drift)


def inventory_findings(fleet: FleetRecords, model: CostModel) -> SprawlFindings:
    """Returns the findings that need no metrics (powered off, orphaned disks, snapshots, owner,
    purpose, lease) of ``fleet`` at its ``now`` (or the current time)."""
    result = analyse(
        fleet.vms,
        fleet.now or datetime.now(UTC),
        model,
        hosts=fleet.hosts,
        volumes=fleet.volumes,
        detectors=build_detectors(enabled=INVENTORY_DETECTORS),
    )
    return SprawlFindings(model.currency, result.findings, result.insufficient)


def scenario(
    model: CostModel, vms: int = 150, seed: int = 1, assumptions: ScenarioAssumptions | None = None
) -> ScenarioResult:
    """Returns the analysis of a seeded fleet of ``vms`` VMs with stated, sourced sprawl rates."""
    a = assumptions or ScenarioAssumptions()
    analysis = run_scenario(model, vms, seed, a)
    rows = tuple(
        Assumption(name, value, SOURCES.get(name, "")) for name, value in asdict(a).items()
    )
    return ScenarioResult(seed, SprawlSummary.of(analysis), analysis, rows)


def bitbrains(
    data_dir: Path,
    model: CostModel,
    *,
    month: str = "2013-7",
    limit: int | None = None,
    assumed_disk_gb: float = 50.0,
    rightsizing: RightSizingParams | None = None,
) -> BitbrainsResult:
    """Returns idle and oversized VMs of a Bitbrains Rnd month and what they cost."""
    fleet = load_bitbrains(data_dir, month, limit, assumed_disk_gb)
    end = epoch_to_datetime(fleet.metrics.end)
    result = analyse(
        fleet.vms,
        end,
        model,
        metrics=fleet.metrics,
        detectors=build_detectors(enabled=("idle",)),
        rightsizing=rightsizing or RightSizingParams(),
    )
    return BitbrainsResult(
        month=month,
        window_start=epoch_to_datetime(fleet.metrics.start),
        window_end=end,
        assumed_disk_gb=assumed_disk_gb,
        summary=_bitbrains_summary(result),
        analysis=result,
    )


def detector_catalogue() -> tuple[DetectorParameter, ...]:
    """Returns every detector with each of its parameters and their defaults."""
    rows = [
        DetectorParameter(name, cls.category, p.name, p.default, p.description)
        for name, cls in DETECTORS.items()
        for p in (cls.params or ())
    ]
    rows += [
        DetectorParameter(name, cls.category, None, None, "")
        for name, cls in DETECTORS.items()
        if not cls.params
    ]
    return tuple(rows)


def _live_analysis(
    fleet: FleetRecords,
    store: MetricsStore | None,
    model: CostModel,
    days: int,
    run: AnalysisRun | None = None,
) -> SprawlAnalysis:
    """The fleet priced once, its metrics read and analysed chunk by chunk, then merged: the
    same answer as one whole-fleet ``analyse``, with memory bounded by the chunk size."""
    run = run or AnalysisRun()
    now = fleet.now or datetime.now(UTC)
    hosts = list(fleet.hosts)
    plan = plan_fleet(fleet.vms, now, model, hosts=hosts, volumes=fleet.volumes)

    def read(vms: Sequence[VMRecord]) -> MetricBatch | None:
        if store is None:
            return None
        return metric_batch(store, list(vms), hosts, now, days, run.step_s)

    remote = None
    if run.scheduler is not None and store is not None:
        remote = StoreReader.of(store, now, days, run.step_s)
    return merge(plan, run_chunks(plan, read, run, remote))


def _bitbrains_summary(result: SprawlAnalysis) -> BitbrainsSummary:
    s = SprawlSummary.of(result)
    idle = next((t.count for t in result.totals if t.category is Category.idle), 0)
    return BitbrainsSummary(
        vms=s.vms,
        idle_vms=idle,
        idle_undecided=len(result.insufficient),
        oversized_vms=s.oversized_vms,
        oversized_cpu=sum(1 for r in result.rightsizing if r.cpu and r.cpu.verdict == "oversized"),
        oversized_memory=sum(
            1 for r in result.rightsizing if r.memory and r.memory.verdict == "oversized"
        ),
        undersized_vms=s.undersized_vms,
        rightsizing_undecided=len(result.rightsizing_insufficient),
        currency=s.currency,
        fleet_monthly_cost=s.fleet_monthly_cost,
        idle_monthly=s.reclaimable_monthly,
        rightsizing_monthly=s.rightsizing_monthly,
        waste_monthly=s.waste_monthly,
        waste_yearly=s.waste_yearly,
    )


# The engine types these results hold are re-exported: interfaces import services only.
__all__ = [
    "INVENTORY_DETECTORS",
    "AnalysisRun",
    "Assumption",
    "BitbrainsResult",
    "BitbrainsSummary",
    "CategoryTotal",
    "DetectorParameter",
    "Finding",
    "RightSizeMode",
    "RightSizingParams",
    "ScenarioResult",
    "SprawlAnalysis",
    "SprawlFindings",
    "SprawlSummary",
    "bitbrains",
    "detector_catalogue",
    "inventory_findings",
    "live_analysis",
    "scenario",
    "sprawl_report",
]
