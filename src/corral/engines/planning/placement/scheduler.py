"""Filter, then weigh: choose a host for one VM or for a multi-VM request."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from corral.engines.planning.model import VM, Fleet
from corral.engines.planning.placement.base import HostFilter, HostWeigher
from corral.engines.planning.placement.outcome import (
    Outcome,
    Placed,
    Rejection,
    Rejections,
    Unschedulable,
    UnschedulableFreeingWouldHelp,
)
from corral.engines.planning.placement.registry import default_filters, default_weighers
from corral.engines.planning.state import BoolArray, ClusterState, FloatArray

DISABLED = "host_disabled"


def normalize(values: FloatArray) -> FloatArray:
    """Min-max to 0..1 over the candidates; all-equal values weigh 0 (as Nova does)."""
    lo, hi = float(values.min()), float(values.max())
    if hi - lo <= 1e-12:
        return np.zeros_like(values)
    return (values - lo) / (hi - lo)


@dataclass
class Scheduler:
    filters: tuple[HostFilter, ...]
    weighers: tuple[HostWeigher, ...]
    #: How many rejected hosts get a sentence (None: all). Counts per filter are always kept.
    explain_limit: int | None = None

    @classmethod
    def default(cls, strategy: str = "spread", ha_failures: int | None = None) -> Scheduler:
        return cls(default_filters(ha_failures), default_weighers(strategy))

    def decide(self, state: ClusterState, vm: VM) -> Outcome:
        """The outcome for ``vm`` against the current state; the state is not changed."""
        masks = [(f, f.passes(state, vm)) for f in self.filters]
        ok = ~state.disabled
        for _, m in masks:
            ok = ok & m
        rejections = self._rejections(state, vm, masks)
        candidates = np.flatnonzero(ok)
        if candidates.size:
            scores = self._scores(state, vm, candidates.astype(np.float64))
            best = int(np.argmax(scores))
            host = int(candidates[best])
            return Placed(vm.name, state.host_names[host], float(scores[best]), rejections)
        return self._unschedulable(state, vm, rejections)

    def _scores(self, state: ClusterState, vm: VM, candidates: FloatArray) -> FloatArray:
        total = np.zeros(candidates.size)
        for w in self.weighers:
            if w.multiplier:
                total += w.multiplier * normalize(w.raw(state, vm, candidates))
        return total

    def _unschedulable(self, state: ClusterState, vm: VM, rejections: Rejections) -> Outcome:
        could = ~state.disabled
        for f in self.filters:
            could = could & (
                f.passes_when_freed(state, vm) if f.resolvable else f.passes(state, vm)
            )
        hosts = tuple(state.host_names[i] for i in np.flatnonzero(could))
        if hosts:
            return UnschedulableFreeingWouldHelp(vm.name, rejections, hosts)
        return Unschedulable(vm.name, rejections)

    def _rejections(
        self, state: ClusterState, vm: VM, masks: list[tuple[HostFilter, BoolArray]]
    ) -> Rejections:
        remaining = ~state.disabled
        counts: dict[str, int] = {}
        if state.disabled.any():
            counts[DISABLED] = int(state.disabled.sum())
        reasons: list[Rejection] = []
        limit = self.explain_limit
        for i in np.flatnonzero(state.disabled)[: limit if limit is not None else None]:
            reasons.append(
                Rejection(state.host_names[i], DISABLED, "host is failed or in maintenance")
            )
        for f, m in masks:
            failed = remaining & ~m
            n_failed = int(failed.sum())
            if not n_failed:
                continue
            counts[f.name] = n_failed
            remaining = remaining & m
            room = None if limit is None else max(limit - len(reasons), 0)
            for i in np.flatnonzero(failed)[:room]:
                reasons.append(Rejection(state.host_names[i], f.name, f.explain(state, vm, int(i))))
        truncated = limit is not None and sum(counts.values()) > len(reasons)
        return Rejections(tuple(reasons), counts, truncated)


@dataclass(frozen=True)
class PlacementResult:
    outcomes: tuple[Outcome, ...]
    state: ClusterState

    @property
    def all_placed(self) -> bool:
        return all(isinstance(o, Placed) for o in self.outcomes)


def request_order(vms: Sequence[VM]) -> list[VM]:
    """Hardest first: members of affinity groups together, then larger memory, then vCPUs."""
    return sorted(
        vms, key=lambda v: (-v.priority, v.affinity[:1] == (), -v.memory_mib, -v.vcpus, v.name)
    )


def place(
    fleet: Fleet,
    vms: Sequence[VM],
    scheduler: Scheduler | None = None,
    *,
    atomic: bool = True,
    state: ClusterState | None = None,
) -> PlacementResult:
    """Place a multi-VM request; with ``atomic`` one failure leaves the state unchanged."""
    sched = scheduler or Scheduler.default()
    base = state if state is not None else ClusterState.from_fleet(fleet)
    work = base.copy()
    outcomes: list[Outcome] = []
    for vm in request_order(vms):
        outcome = sched.decide(work, vm)
        outcomes.append(outcome)
        if isinstance(outcome, Placed):
            work.add(vm, work.index[outcome.host])
    result_state = base if atomic and not all(isinstance(o, Placed) for o in outcomes) else work
    return PlacementResult(tuple(outcomes), result_state)
