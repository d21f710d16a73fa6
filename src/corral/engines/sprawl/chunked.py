"""Fleet-wide sprawl analysis in chunks of VMs, so no metric array ever spans the fleet.

Why the split: pricing and the inventory detectors need the whole inventory (a
per-host licence is shared by the VMs of its host, an orphaned volume is matched
against every VM's disks) but no metrics, so they run once over the inventory.
The metric work (detectors with ``uses_metrics``, and right-sizing) judges each
VM from its own rows only, so it runs per chunk and the chunks' outcomes are
concatenated in fleet order. ``merge`` then dedupes and totals exactly as
``analyse`` does: for chunks that cover the fleet in order, the result equals one
whole-fleet ``analyse`` with every VM in the batch.

A ``ChunkTask`` is plain data and ``analyse_chunk`` a pure function, so a chunk
can be analysed in this process or shipped to another (a Dask worker).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from corral.engines.costing import CostModel, VMCost, price_fleet, rate_card
from corral.engines.sprawl.analysis import SprawlAnalysis, assemble
from corral.engines.sprawl.detectors import DetectionContext, Detector, build_detectors
from corral.engines.sprawl.model import (
    HostRecord,
    InsufficientData,
    MetricBatch,
    Outcome,
    VMRecord,
    Volume,
)
from corral.engines.sprawl.rightsizing import RightSizing, RightSizingParams, right_size


@dataclass(frozen=True)
class FleetPlan:
    """The whole-fleet half of an analysis: the inventory, its prices, the detectors."""

    vms: tuple[VMRecord, ...]
    now: datetime
    model: CostModel
    hosts: tuple[HostRecord, ...]
    volumes: tuple[Volume, ...]
    detectors: tuple[Detector, ...]
    costs: Mapping[str, VMCost]
    rightsizing: RightSizingParams | None = None

    @property
    def metric_detectors(self) -> tuple[Detector, ...]:
        return tuple(d for d in self.detectors if d.uses_metrics)


@dataclass(frozen=True)
class ChunkTask:
    """Everything one chunk's metric work needs (its VMs' prices and hosts only)."""

    vms: tuple[VMRecord, ...]
    metrics: MetricBatch | None
    costs: Mapping[str, VMCost]
    hosts: tuple[HostRecord, ...]
    now: datetime
    model: CostModel
    detectors: tuple[Detector, ...]
    rightsizing: RightSizingParams | None = None


@dataclass(frozen=True)
class ChunkResult:
    """One chunk's outcomes: one tuple per metric detector (in plan order), and right-sizing."""

    outcomes: tuple[tuple[Outcome, ...], ...]
    sized: tuple[RightSizing | InsufficientData, ...]


def plan_fleet(
    vms: Sequence[VMRecord],
    now: datetime,
    model: CostModel,
    *,
    hosts: Sequence[HostRecord] = (),
    volumes: Sequence[Volume] = (),
    detectors: Sequence[Detector] | None = None,
    rightsizing: RightSizingParams | None = None,
) -> FleetPlan:
    """Price the fleet once; the plan then hands out chunks and merges their results."""
    return FleetPlan(
        vms=tuple(vms),
        now=now,
        model=model,
        hosts=tuple(hosts),
        volumes=tuple(volumes),
        detectors=tuple(detectors or build_detectors()),
        costs=price_fleet(vms, hosts, model),
        rightsizing=rightsizing,
    )


def chunk_task(plan: FleetPlan, vms: Sequence[VMRecord], metrics: MetricBatch | None) -> ChunkTask:
    """The task for ``vms`` (a slice of ``plan.vms``) with their metrics."""
    on = {vm.host for vm in vms}
    return ChunkTask(
        vms=tuple(vms),
        metrics=metrics,
        costs={vm.uuid: plan.costs[vm.uuid] for vm in vms},
        hosts=tuple(h for h in plan.hosts if h.name in on),
        now=plan.now,
        model=plan.model,
        detectors=plan.metric_detectors,
        rightsizing=plan.rightsizing,
    )


def analyse_chunk(task: ChunkTask) -> ChunkResult:
    """Run the metric detectors and right-sizing on one chunk."""
    ctx = DetectionContext(task.vms, task.now, task.costs, task.model, task.hosts, (), task.metrics)
    rates = rate_card(task.model)
    return ChunkResult(
        outcomes=tuple(tuple(d.detect(ctx)) for d in task.detectors),
        sized=tuple(right_size(task.vms, task.metrics, rates, task.rightsizing, task.hosts)),
    )


def merge(plan: FleetPlan, results: Iterable[ChunkResult]) -> SprawlAnalysis:
    """Run the inventory detectors on the whole fleet and put every detector's outcomes in
    plan order (the chunks' in chunk order), then dedupe and total as ``analyse`` does."""
    done = list(results)
    ctx = DetectionContext(
        plan.vms, plan.now, plan.costs, plan.model, plan.hosts, plan.volumes, None
    )
    slot = {id(d): k for k, d in enumerate(plan.metric_detectors)}
    outcomes: list[Outcome] = []
    for d in plan.detectors:
        if id(d) in slot:
            outcomes += [o for r in done for o in r.outcomes[slot[id(d)]]]
        else:
            outcomes += d.detect(ctx)
    sized = [s for r in done for s in r.sized]
    return assemble(plan.vms, plan.model, plan.costs, plan.volumes, outcomes, sized)


def chunks(vms: Sequence[VMRecord], size: int) -> list[tuple[VMRecord, ...]]:
    """``vms`` in fleet order, ``size`` at a time (the last chunk may be shorter)."""
    step = max(1, size)
    return [tuple(vms[i : i + step]) for i in range(0, len(vms), step)]
