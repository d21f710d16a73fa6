"""Retention: which restore points keep-last/hourly/daily/weekly/monthly/yearly keep, and the
promise garbage collection rests on: no kept incremental ever loses a parent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from corral.engines.backup.policy import Retention
from corral.engines.backup.retention import Dated, retained

T0 = datetime(2026, 1, 5, 0, 30, tzinfo=UTC)  # a Monday


def _chain(hours: list[int], full_every: int = 3) -> list[Dated]:
    """Points taken at T0 + each hour; every ``full_every``-th a full, the rest incrementals."""
    out: list[Dated] = []
    for i, h in enumerate(hours):
        parent = None if i % full_every == 0 else out[-1].id
        out.append(Dated(f"p{i:03d}", T0 + timedelta(hours=h), parent))
    return out


def test_no_rule_keeps_everything() -> None:
    points = _chain([0, 1, 2])
    assert retained(points, Retention()).remove == ()


def test_keep_last_keeps_the_newest_and_their_parents() -> None:
    points = _chain([0, 1, 2, 3, 4, 5])  # fulls p000, p003; p004 <- p005
    kept = retained(points, Retention(keep_last=1))
    assert kept.keep == {"p005": "keep-last", "p004": "parent of p005", "p003": "parent of p004"}
    assert kept.remove == ("p002", "p001", "p000")


def test_daily_keeps_the_newest_point_of_each_day() -> None:
    points = _chain([0, 5, 24, 30, 48, 50], full_every=1)  # all fulls: no parents
    kept = retained(points, Retention(daily=2))
    assert set(kept.keep) == {"p005", "p003"}  # newest of day 3 and of day 2
    assert kept.remove == ("p004", "p002", "p001", "p000")


def test_a_day_covered_by_keep_last_does_not_use_up_the_daily_count() -> None:
    points = _chain([0, 24, 48, 49], full_every=1)
    kept = retained(points, Retention(keep_last=1, daily=2))
    # p003 (day 3) by keep-last; daily then takes day 2 and day 1, not day 3 again
    assert kept.keep == {"p003": "keep-last", "p001": "daily", "p000": "daily"}


def test_weekly_monthly_yearly_buckets() -> None:
    days = [0, 8 * 24, 40 * 24, 400 * 24]  # week 2, month 2, next year
    points = _chain(days, full_every=1)
    assert set(retained(points, Retention(weekly=2)).keep) == {"p003", "p002"}
    assert set(retained(points, Retention(monthly=3)).keep) == {"p003", "p002", "p001"}
    assert set(retained(points, Retention(yearly=5)).keep) == {"p003", "p002"}


rules = st.builds(
    Retention,
    keep_last=st.integers(0, 4), hourly=st.integers(0, 4), daily=st.integers(0, 4),
    weekly=st.integers(0, 3), monthly=st.integers(0, 3), yearly=st.integers(0, 2),
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 24 * 400), min_size=1, max_size=40, unique=True),
    st.integers(1, 6),
    rules,
)
def test_kept_and_removed_split_the_points_and_no_kept_point_loses_a_parent(
    hours: list[int], full_every: int, rule: Retention
) -> None:
    points = _chain(sorted(hours), full_every)
    kept = retained(points, rule)
    assert set(kept.keep) | set(kept.remove) == {p.id for p in points}
    assert not set(kept.keep) & set(kept.remove)
    parents = {p.id: p.parent for p in points}
    for point in kept.keep:
        assert parents[point] is None or parents[point] in kept.keep
    newest = sorted(points, key=lambda p: p.taken_at, reverse=True)
    assert all(p.id in kept.keep for p in newest[: rule.keep_last])
    # removal order is newest first, so a child always goes before its parent
    order = {pid: i for i, pid in enumerate(kept.remove)}
    for pid in kept.remove:
        parent = parents[pid]
        if parent in order:
            assert order[pid] < order[parent]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 24 * 400), min_size=1, max_size=40, unique=True),
    st.integers(1, 6),
    rules,
    st.data(),
)
def test_a_held_point_and_its_parents_are_never_removed_and_holds_change_nothing_else(
    hours: list[int], full_every: int, rule: Retention, data: st.DataObject
) -> None:
    points = _chain(sorted(hours), full_every)
    ids = [p.id for p in points]
    held = data.draw(st.sets(st.sampled_from(ids), max_size=3))
    plain = retained(points, rule)
    kept = retained(points, rule, {p: "case" for p in held})
    parents = {p.id: p.parent for p in points}
    for point in held:
        while point is not None:
            assert point in kept.keep and point not in kept.remove
            point = parents[point]
    for point, why in plain.keep.items():  # a hold only adds: the rules' reasons stand
        assert kept.keep[point] == why
    assert set(kept.remove) == set(plain.remove) - set(kept.keep)
