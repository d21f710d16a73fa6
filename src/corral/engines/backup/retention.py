"""Which restore points a retention rule keeps, and which it lets go.

The rules are Proxmox's: ``keep_last`` keeps the newest N; ``hourly`` keeps the newest point of
each of the newest N hours that have one, and so on for days, ISO weeks, months and years. A
point kept by an earlier rule marks its period as covered without using up a later rule's count.
No rule set at all keeps everything.

A point on legal hold (``held``: id -> why) that the rules let go is kept all the same (reason
``on hold: ...``), after them, so it neither uses up nor covers a period of theirs.

An incremental is useless without its parents, so every ancestor of a kept point is kept too
(reason ``parent of ...``): a garbage collection following this never breaks a retained chain.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from corral.engines.backup.policy import Retention


@dataclass(frozen=True, slots=True)
class Dated:
    """A restore point as retention sees it."""

    id: str
    taken_at: datetime
    parent: str | None = None


@dataclass(frozen=True, slots=True)
class Kept:
    keep: dict[str, str]  # point id -> the first reason it is kept
    remove: tuple[str, ...]  # newest first


_PERIODS: tuple[tuple[str, Callable[[datetime], tuple[int, ...]]], ...] = (
    ("hourly", lambda t: (t.year, t.month, t.day, t.hour)),
    ("daily", lambda t: (t.year, t.month, t.day)),
    ("weekly", lambda t: tuple(t.isocalendar())[:2]),
    ("monthly", lambda t: (t.year, t.month)),
    ("yearly", lambda t: (t.year,)),
)


def retained(
    points: Sequence[Dated], rules: Retention, held: Mapping[str, str] | None = None
) -> Kept:
    """The points ``rules`` (or a hold) keep, with why, and the ones they do not, newest
    first."""
    newest = sorted(points, key=lambda p: (p.taken_at, p.id), reverse=True)
    if not any(getattr(rules, f) for f in Retention.__dataclass_fields__):
        return Kept({p.id: "no retention rule: keep all" for p in newest}, ())
    keep: dict[str, str] = {p.id: "keep-last" for p in newest[: rules.keep_last]}
    for name, period in _PERIODS:
        _by_period(newest, getattr(rules, name), name, period, keep)
    _with_parents(newest, keep)
    if held:  # only what the rules let go is kept "on hold", then the parents it needs
        keep.update(
            {p.id: f"on hold: {held[p.id]}" for p in newest if p.id in held and p.id not in keep}
        )
        _with_parents(newest, keep)
    return Kept(keep, tuple(p.id for p in newest if p.id not in keep))


def _by_period(
    newest: Sequence[Dated],
    count: int,
    name: str,
    period: Callable[[datetime], tuple[int, ...]],
    keep: dict[str, str],
) -> None:
    if count <= 0:
        return
    covered: set[tuple[int, ...]] = set()  # by points an earlier rule kept: not counted
    chosen: set[tuple[int, ...]] = set()
    for point in newest:
        bucket = period(point.taken_at)
        if point.id in keep:
            covered.add(bucket)
        elif bucket not in covered and bucket not in chosen:
            if len(chosen) >= count:
                return
            chosen.add(bucket)
            keep[point.id] = name


def _with_parents(points: Sequence[Dated], keep: dict[str, str]) -> None:
    parents = {p.id: p.parent for p in points}
    for child in list(keep):
        parent = parents.get(child)
        while parent is not None and parent not in keep:
            keep[parent] = f"parent of {child}"
            child, parent = parent, parents.get(parent)
