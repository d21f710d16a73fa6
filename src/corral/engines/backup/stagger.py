"""Stagger periodic jobs over a cycle so no shared resource is over its budget at any moment.

Backups (each VM's runs per day) and patch windows (each VM once a week) are the same problem:
a job runs ``runs`` times per cycle, evenly spaced, each run ``duration`` slots long, and while it
runs it takes ``demand`` units of every resource it names (a host's and a datastore's backup
bandwidth in MiB/s; or one patching slot of a host or an anti-affinity group). Each resource has
a budget per slot (zero outside its window). The scheduler places the hardest jobs first and, for
each, chooses the start offset that fits and leaves the most headroom, so jobs spread out
instead of all starting at the same minute.

A job that cannot be placed is not forced in: the result says so, with the extra budget per
resource that would have let it fit (``Unplaced.extra``). Time is whole slots; the cycle wraps
(a run may start at 23:55 and end at 00:25).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Job:
    """``runs`` evenly spaced runs per cycle, ``duration`` slots each, taking ``demand`` of each
    named resource while they run."""

    name: str
    resources: tuple[str, ...]
    runs: int
    duration: int
    demand: int


@dataclass(frozen=True, slots=True)
class Placed:
    name: str
    starts: tuple[int, ...]  # slot of each run's start, ascending


@dataclass(frozen=True, slots=True)
class Unplaced:
    """No start offset fits (all ``slots`` were tried). ``extra``: budget per resource (added over
    the whole cycle) that would have let the job fit at its least-bad offset; empty when a run
    outlasts its spacing (``too-long``), which no budget fixes."""

    name: str
    reason: str  # "too-long" (a run outlasts its spacing) | "no-room"
    extra: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class Staggered:
    placed: tuple[Placed, ...]
    unplaced: tuple[Unplaced, ...]
    #: each resource's use per slot after placement (same keys as the budgets)
    used: Mapping[str, tuple[int, ...]]


def run_starts(offset: int, runs: int, slots: int) -> tuple[int, ...]:
    """Start slots of ``runs`` runs spread evenly over the cycle, the first at ``offset``."""
    return tuple(sorted((offset + (j * slots) // runs) % slots for j in range(runs)))


def spacing(runs: int, slots: int) -> int:
    """The shortest gap between two consecutive evenly spaced runs."""
    return slots // runs


def stagger(jobs: Sequence[Job], budgets: Mapping[str, Sequence[int]], slots: int) -> Staggered:
    """Place every job that fits; ``budgets`` maps each resource to its budget per slot."""
    residual = {name: np.asarray(b, dtype=np.int64).copy() for name, b in budgets.items()}
    for name, arr in residual.items():
        if arr.shape != (slots,):
            raise ValueError(f"budget of {name} has {arr.shape[0]} slots, not {slots}")
    offsets = {j.runs: _offsets(j.runs, slots) for j in jobs}
    placed: list[Placed] = []
    unplaced: list[Unplaced] = []
    order = sorted(jobs, key=lambda j: (-j.runs * j.duration * j.demand, -j.runs, j.name))
    for job in order:
        if job.runs < 1 or job.duration < 1 or job.duration > spacing(job.runs, slots):
            unplaced.append(Unplaced(job.name, "too-long", {}))
            continue
        outcome = _place(job, [residual[r] for r in job.resources], offsets[job.runs], slots)
        if isinstance(outcome, int):
            starts = run_starts(outcome, job.runs, slots)
            for r in job.resources:
                _take(residual[r], starts, job.duration, job.demand, slots)
            placed.append(Placed(job.name, starts))
        else:
            unplaced.append(
                Unplaced(job.name, "no-room", dict(zip(job.resources, outcome, strict=True)))
            )
    used = {
        name: tuple(int(x) for x in np.asarray(budgets[name], dtype=np.int64) - arr)
        for name, arr in residual.items()
    }
    return Staggered(tuple(placed), tuple(unplaced), used)


def try_place(job: Job, residual: Mapping[str, Sequence[int]], slots: int) -> int | None:
    """The offset ``job`` would get against ``residual`` (budget left per slot), or None."""
    if job.runs < 1 or job.duration < 1 or job.duration > spacing(job.runs, slots):
        return None
    arrays = [np.asarray(residual[r], dtype=np.int64) for r in job.resources]
    outcome = _place(job, arrays, _offsets(job.runs, slots), slots)
    return outcome if isinstance(outcome, int) else None


def _offsets(runs: int, slots: int) -> Array:
    """(runs x slots) matrix: row j holds the start slot of run j for every offset."""
    base = (np.arange(runs, dtype=np.int64) * slots) // runs
    return (base[:, None] + np.arange(slots, dtype=np.int64)[None, :]) % slots


def _window_min(residual: Array, duration: int, slots: int) -> Array:
    """For each start slot, the least residual over the ``duration`` slots from there (wrapping)."""
    ext = np.concatenate([residual, residual[: duration - 1]])
    view = np.lib.stride_tricks.sliding_window_view(ext, duration)
    return view.min(axis=1)[:slots]  # type: ignore[no-any-return]


def _place(job: Job, residuals: list[Array], offsets: Array, slots: int) -> int | list[int]:
    """The best offset, or (when none fits) the extra budget per resource the least-bad needs."""
    per_offset = [_window_min(r, job.duration, slots)[offsets].min(axis=0) for r in residuals]
    headroom = np.minimum.reduce(per_offset) if per_offset else np.full(slots, job.demand)
    fits = headroom >= job.demand
    if fits.any():
        spare = sum(per_offset)
        return int(np.argmax(np.where(fits, spare, np.iinfo(np.int64).min)))
    shortfall = np.stack([np.maximum(job.demand - p, 0) for p in per_offset])
    least = int(np.argmin(shortfall.sum(axis=0)))
    return [int(x) for x in shortfall[:, least]]


def _take(residual: Array, starts: tuple[int, ...], duration: int, demand: int, slots: int) -> None:
    for s in starts:
        idx = np.arange(s, s + duration) % slots
        residual[idx] -= demand
