"""Waste over time on a hand-checked small history, and on a real synced inventory.

Prices under tests/fixtures/sprawl/costmodels/hand_checked.yaml, for a VM with
1 vCPU, 2 GiB and a 10 GB disk on no known host: compute 5 + 2, storage 1,
platform 3, agents 7, labour 20 -> 38 a month running, 31 powered off (no
compute); with 4 GiB, 40. Storage is 0.1 per GB-month.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from corral.engines.costing import CostModel, load_cost_model
from corral.engines.sprawl import Category, Disk, VMState
from corral.reports.history import (
    Change,
    HistoryParams,
    OrphanedDisk,
    VMHistory,
    load_histories,
    month_ends,
    value_at,
    waste_over_time,
)
from corral.store import models as m
from tests.reports.conftest import DemoInventory

HAND = (
    Path(__file__).resolve().parents[1] / "fixtures" / "sprawl" / "costmodels" / "hand_checked.yaml"
)
T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
RUN, OFF = VMState.running, VMState.shutoff


def at(month: int, day: int) -> datetime:
    return datetime(2026, month, day, 9, 0, tzinfo=UTC)


def vm(
    uuid: str, states: tuple[Change[VMState], ...], owner: str | None = "x", **kw: object
) -> VMHistory:
    first = states[0].at
    base: dict[str, object] = {
        "uuid": uuid,
        "name": uuid,
        "states": states,
        "owners": (Change(first, owner),),
        "vcpus": (Change(first, 1),),
        "memory_mib": (Change(first, 2048),),
        "disks": (Disk(f"/{uuid}.qcow2", 10.0),),
    }
    base.update(kw)
    return VMHistory(**base)  # type: ignore[arg-type]


def fleet() -> tuple[list[VMHistory], list[OrphanedDisk]]:
    vms = [
        # a: stopped on Jan 10; 30 days later, powered off.
        vm("a", (Change(T0, RUN), Change(at(1, 10), OFF))),
        # b: no owner until bob claimed it on Feb 10.
        vm("b", (Change(T0, RUN),), owners=(Change(T0, None), Change(at(2, 10), "bob"))),
        # c: lease ended Feb 1, grown to 4 GiB on Feb 20, deleted Mar 1 (its disk stays).
        vm(
            "c",
            (Change(T0, RUN),),
            expiries=(Change(T0, datetime(2026, 2, 1, tzinfo=UTC)),),
            memory_mib=(Change(T0, 2048), Change(at(2, 20), 4096)),
            deleted_at=at(3, 1),
        ),
        # d: off since discovery, no owner, lease ended Jan 15: powered off wins.
        vm(
            "d",
            (Change(T0, OFF),),
            owner=None,
            expiries=(Change(T0, datetime(2026, 1, 15, tzinfo=UTC)),),
        ),
        # e: first seen Feb 15, no owner.
        vm("e", (Change(at(2, 15), RUN),), owner=None),
        # f: off Jan 5, on Jan 20, off again Feb 1: off for 27 days on Feb 28, 42 on Mar 15.
        vm(
            "f",
            (Change(T0, RUN), Change(at(1, 5), OFF), Change(at(1, 20), RUN), Change(at(2, 1), OFF)),
        ),
    ]
    orphans = [
        OrphanedDisk("/c.qcow2", 100.0, at(3, 1)),
        OrphanedDisk("/old.qcow2", 50.0, T0),
        OrphanedDisk("/new.qcow2", 500.0, at(3, 12)),  # 3 days old on Mar 15: too young
    ]
    return vms, orphans


@pytest.fixture(scope="module")
def hand() -> CostModel:
    return load_cost_model(HAND)


def test_month_ends_then_now() -> None:
    ends = month_ends(T0, NOW)
    assert [e.isoformat() for e in ends] == [
        "2026-01-31T23:59:59.999999+00:00",
        "2026-02-28T23:59:59.999999+00:00",
        "2026-03-15T12:00:00+00:00",
    ]
    assert month_ends(NOW, NOW) == [NOW]


def test_value_at_a_timeline() -> None:
    line = (Change(T0, "a"), Change(at(2, 1), "b"))
    assert value_at(line, T0 - timedelta(seconds=1), "?") == "?"
    assert value_at(line, T0, "?") == "a"
    assert value_at(line, at(3, 1), "?") == "b"


def test_hand_checked_history(hand: CostModel) -> None:
    vms, orphans = fleet()
    jan, feb, mar = waste_over_time(vms, orphans, month_ends(T0, NOW), hand)
    po, le, od, no = (
        Category.powered_off,
        Category.lease_expired,
        Category.orphaned_disk,
        Category.no_owner,
    )
    # Jan 31: a, b, c, d, f alive. d off 30.6 days (powered off: 31); b has no owner (38);
    # /old.qcow2 orphaned 30 days (50 GB: 5). c's lease ends tomorrow.
    assert jan.vms == 5
    assert dict(jan.counts) == {po: 1, no: 1, od: 1}
    assert dict(jan.monthly) == pytest.approx({po: 31, no: 38, od: 5})
    assert (jan.waste, jan.at_risk) == pytest.approx((36, 38))
    # Feb 28: e appeared. a and d powered off (62); c's lease expired at 4 GiB (40);
    # b was claimed, e has no owner (38); f only 27 days off.
    assert feb.vms == 6
    assert dict(feb.counts) == {po: 2, le: 1, no: 1, od: 1}
    assert dict(feb.monthly) == pytest.approx({po: 62, le: 40, no: 38, od: 5})
    # Mar 15: c deleted, its 100 GB disk orphaned 14 days (10) besides /old (5); f off 42 days.
    assert mar.vms == 5
    assert dict(mar.counts) == {po: 3, no: 1, od: 2}
    assert dict(mar.monthly) == pytest.approx({po: 93, no: 38, od: 15})
    assert (mar.waste, mar.at_risk) == pytest.approx((108, 38))


def test_thresholds_are_parameters(hand: CostModel) -> None:
    vms, orphans = fleet()
    params = HistoryParams(powered_off_days=60, orphan_min_age_days=0)
    (mar,) = waste_over_time(vms, orphans, [NOW], hand, params)
    # Only d (off 73 days) is powered off for 60+; a (64 days) too; f (42) is not.
    assert mar.counts[Category.powered_off] == 2
    assert mar.monthly[Category.orphaned_disk] == pytest.approx(65)  # the young disk counts now


def test_histories_from_a_synced_inventory(demo_inventory: DemoInventory, hand: CostModel) -> None:
    """The demo's real events: creations, stops, deletions and a metadata change, replayed."""
    demo = demo_inventory
    inv = demo.inv
    now = inv.clock()
    vms, orphans = load_histories(inv)
    changed = next(h for h in vms if h.uuid == demo.changed_uuid)
    assert [c.value for c in changed.owners] == [demo.old_owner, None]
    assert value_at(changed.owners, now - timedelta(hours=2), "?") == demo.old_owner
    assert value_at(changed.owners, now, "?") is None
    first = min(h.first_seen for h in vms if h.first_seen is not None)
    points = waste_over_time(vms, orphans, month_ends(first, now), hand)
    assert len(points) == 13  # June 2025 .. May 2026 month ends, then now
    assert points[-1].at == now
    with inv.db.session() as s:
        live = list(
            s.scalars(select(m.VM).where(m.VM.deleted_at.is_(None), m.VM.is_template.is_(False)))
        )
        deleted = s.scalar(
            select(func.count()).select_from(m.VM).where(m.VM.deleted_at.is_not(None))
        )
    assert points[-1].vms == len(live)
    off_long = [
        v for v in live if v.state == "shutoff" and now - v.state_since >= timedelta(days=30)
    ]
    assert points[-1].counts.get(Category.powered_off, 0) == len(off_long)
    assert deleted and sum(h.deleted_at is not None for h in vms) == deleted
    assert all(o.orphaned_since <= now for o in orphans)
