"""Every host ranked for one VM, with why: the first filter that rejected it, or each
weigher's weighted score.

Why beside the scheduler: ``Scheduler.decide`` keeps only the winner and its total; a person
deciding where a VM goes wants the whole table (which hosts passed, how each weigher scored
them, why the others failed). The same filters, the same normalisation and the same weights
are used, so the first passing host here is the one ``decide`` chooses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from corral.engines.planning.model import VM
from corral.engines.planning.placement.scheduler import DISABLED, Scheduler, normalize
from corral.engines.planning.state import ClusterState

DISABLED_REASON = "host is failed or in maintenance"


@dataclass(frozen=True, slots=True)
class HostRank:
    """One host for one VM: passed (``rank`` from 1, ``scores`` per weigher, ``total``) or
    rejected (``rejected_by`` the first failing filter, ``reason`` its sentence)."""

    host: str
    rank: int | None
    total: float | None
    scores: tuple[tuple[str, float], ...]
    rejected_by: str | None = None
    reason: str | None = None


def rank_hosts(scheduler: Scheduler, state: ClusterState, vm: VM) -> tuple[HostRank, ...]:
    """Passing hosts best first (ties keep the fleet's order, as ``decide`` does), then the
    rejected ones in the fleet's order."""
    ok = ~state.disabled
    first_fail: dict[int, tuple[str, str]] = {
        int(i): (DISABLED, DISABLED_REASON) for i in np.flatnonzero(state.disabled)
    }
    for f in scheduler.filters:
        mask = f.passes(state, vm)
        for i in np.flatnonzero(ok & ~mask):
            first_fail[int(i)] = (f.name, f.explain(state, vm, int(i)))
        ok = ok & mask
    candidates = np.flatnonzero(ok)
    passed = _weighed(scheduler, state, vm, candidates)
    rejected = [
        HostRank(state.host_names[i], None, None, (), *first_fail[i]) for i in sorted(first_fail)
    ]
    return (*passed, *rejected)


def _weighed(
    scheduler: Scheduler, state: ClusterState, vm: VM, candidates: np.typing.NDArray[np.intp]
) -> list[HostRank]:
    if not candidates.size:
        return []
    indexes = candidates.astype(np.float64)
    parts = [
        (w.name, w.multiplier * normalize(w.raw(state, vm, indexes)))
        for w in scheduler.weighers
        if w.multiplier
    ]
    total = np.zeros(candidates.size)
    for _, part in parts:
        total += part
    order = sorted(range(candidates.size), key=lambda k: (-float(total[k]), k))
    return [
        HostRank(
            host=state.host_names[int(candidates[k])],
            rank=n,
            total=float(total[k]),
            scores=tuple((name, float(part[k])) for name, part in parts),
        )
        for n, k in enumerate(order, start=1)
    ]
