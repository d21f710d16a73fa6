"""Stagger periodic jobs over a cycle so no shared resource is over its budget at any moment.

Backups (each VM's runs per day) and patch windows (each VM once a week) are the same problem:
a job runs ``runs`` times per cycle, evenly spaced, each run ``duration`` slots long, and while it
runs it takes ``demand`` units of every resource it names (a host's and a datastore's backup
bandwidth in MiB/s; or one patching place of a host or an anti-affinity group). Each resource has
a budget per slot (zero outside its window). The scheduler places the hardest jobs first and, for
each, chooses the start offset that fits and leaves the most headroom, so jobs spread out
instead of all starting at the same minute.

A job that cannot be placed is not forced in: the result lists it, and ``fit`` against the final
residual budgets tells what extra budget per resource would let it in. Time is whole slots; the
cycle wraps (a run may start at 23:55 and end at 00:25).
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
    """No start offset fits (every one of the cycle's slots was tried): ``too-long`` when a run
    outlasts its spacing (no budget helps), ``no-room`` when the budgets are short."""

    name: str
    reason: str


@dataclass(frozen=True, slots=True)
class Staggered:
    placed: tuple[Placed, ...]
    unplaced: tuple[Unplaced, ...]
    #: each resource's budget left per slot after placement (same keys as the budgets)
    residual: Mapping[str, tuple[int, ...]]


@dataclass(frozen=True, slots=True)
class Fit:
    """Where a job would go: ``offset`` when it fits; else ``extra``, the budget per resource
    (added over the whole cycle) that would let it fit at its least-bad offset."""

    offset: int | None
    extra: Mapping[str, int]


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
    offsets = {j.runs: _offsets(j.runs, slots) for j in jobs if j.runs >= 1}
    placed: list[Placed] = []
    unplaced: list[Unplaced] = []
    for job in sorted(jobs, key=lambda j: (-j.runs * j.duration * j.demand, -j.runs, j.name)):
        if not _spaced(job, slots):
            unplaced.append(Unplaced(job.name, "too-long"))
            continue
        offset, _ = _place(job, [residual[r] for r in job.resources], offsets[job.runs], slots)
        if offset is None:
            unplaced.append(Unplaced(job.name, "no-room"))
            continue
        starts = run_starts(offset, job.runs, slots)
        for r in job.resources:
            _take(residual[r], starts, job.duration, job.demand, slots)
        placed.append(Placed(job.name, starts))
    left = {name: tuple(int(x) for x in arr) for name, arr in residual.items()}
    return Staggered(tuple(placed), tuple(unplaced), left)


def fit(job: Job, residual: Mapping[str, Sequence[int]], slots: int) -> Fit:
    """Where ``job`` would go against ``residual`` budgets, or what extra budget it lacks."""
    if not _spaced(job, slots):
        return Fit(None, {})
    arrays = [np.asarray(residual[r], dtype=np.int64) for r in job.resources]
    offset, short = _place(job, arrays, _offsets(job.runs, slots), slots)
    if offset is not None:
        return Fit(offset, {})
    return Fit(None, dict(zip(job.resources, short, strict=True)))


def _spaced(job: Job, slots: int) -> bool:
    return 1 <= job.runs <= slots and 1 <= job.duration <= spacing(job.runs, slots)


def _offsets(runs: int, slots: int) -> Array:
    """(runs x slots) matrix: row j holds the start slot of run j for every offset."""
    base = (np.arange(runs, dtype=np.int64) * slots) // runs
    return (base[:, None] + np.arange(slots, dtype=np.int64)[None, :]) % slots


def _window_min(residual: Array, duration: int, slots: int) -> Array:
    """For each start slot, the least residual over the ``duration`` slots from there (wrapping)."""
    ext = np.concatenate([residual, residual[: duration - 1]])
    view = np.lib.stride_tricks.sliding_window_view(ext, duration)
    return view.min(axis=1)[:slots]  # type: ignore[no-any-return]


def _place(
    job: Job, residuals: list[Array], offsets: Array, slots: int
) -> tuple[int | None, list[int]]:
    """The best offset (most headroom left), or None and the least-bad offset's shortfall."""
    per_offset = [_window_min(r, job.duration, slots)[offsets].min(axis=0) for r in residuals]
    if not per_offset:
        return 0, []
    fits = np.minimum.reduce(per_offset) >= job.demand
    if fits.any():
        spare = sum(per_offset)
        return int(np.argmax(np.where(fits, spare, np.iinfo(np.int64).min))), []
    shortfall = np.stack([np.maximum(job.demand - p, 0) for p in per_offset])
    least = int(np.argmin(shortfall.sum(axis=0)))
    return None, [int(x) for x in shortfall[:, least]]


def _take(residual: Array, starts: tuple[int, ...], duration: int, demand: int, slots: int) -> None:
    """Take ``demand`` over each run; runs never overlap (duration <= spacing), so no slot twice."""
    idx = (np.asarray(starts, dtype=np.int64)[:, None] + np.arange(duration)[None, :]) % slots
    residual[idx.ravel()] -= demand
