"""Staggered patch windows: once a week per VM, inside the window on allowed days, at most
``per_host`` VMs of a host at once, never two members of an anti-affinity group together."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from corral.engines.backup import PatchRules, PatchVM, Window, plan_patches
from corral.engines.backup.patch import DAYS
from corral.services import backup
from corral.services.fleet import read_fleet_file

FLEETS = Path(__file__).resolve().parents[1] / "fixtures" / "fleets"


def _minutes(day: str, start: int, length: int) -> set[int]:
    base = DAYS.index(day) * 1440 + start
    return {(base + m) % (7 * 1440) for m in range(length)}


@st.composite
def patch_cases(draw: st.DrawFn) -> tuple[list[PatchVM], PatchRules]:
    vms = [
        PatchVM(
            f"vm{i}",
            f"h{draw(st.integers(0, 2))}",
            tuple(draw(st.sets(st.sampled_from(["a", "b"]), max_size=1))),
            draw(st.sampled_from([15, 30, 90])),
        )
        for i in range(draw(st.integers(1, 25)))
    ]
    start = draw(st.integers(0, 23)) * 60
    rules = PatchRules(
        Window(start, (start + draw(st.sampled_from([60, 120, 240]))) % 1440),
        tuple(draw(st.sets(st.sampled_from(DAYS), min_size=1))),
        draw(st.integers(1, 2)),
    )
    return vms, rules


@settings(max_examples=80, deadline=None)
@given(patch_cases())
def test_patch_slots_keep_every_rule(case: tuple[list[PatchVM], PatchRules]) -> None:
    vms, rules = case
    plan = plan_patches(vms, rules)
    by_name = {v.name: v for v in vms}
    assert sorted([s.vm for s in plan.slots] + list(plan.unplaced)) == sorted(by_name)
    busy_host: Counter[tuple[str, int]] = Counter()
    busy_group: Counter[tuple[str, int]] = Counter()
    for s in plan.slots:
        assert s.day in rules.days
        assert s.minutes >= by_name[s.vm].minutes
        for m in _minutes(s.day, s.start_minute, s.minutes):
            day = DAYS[m // 1440]
            assert day in rules.days and rules.window.contains(m % 1440), (s, m)
            busy_host[(s.host, m)] += 1
            for g in by_name[s.vm].groups:
                busy_group[(g, m)] += 1
    assert max(busy_host.values(), default=0) <= rules.per_host
    assert max(busy_group.values(), default=0) <= 1


def test_a_host_with_more_vms_than_its_windows_hold_lists_the_rest() -> None:
    vms = [PatchVM(f"vm{i}", "h1", (), 60) for i in range(10)]
    rules = PatchRules(Window(60, 180), ("sat", "sun"), 1)  # 2 h on 2 days: 4 one-hour slots
    plan = plan_patches(vms, rules)
    assert len(plan.slots) == 4 and len(plan.unplaced) == 6
    assert {(s.day, s.start_minute) for s in plan.slots} == {
        ("sat", 60), ("sat", 120), ("sun", 60), ("sun", 120)
    }  # fmt: skip


def test_the_service_plans_a_fleet_files_vms_with_their_anti_affinity() -> None:
    result = backup.patch_windows(read_fleet_file(FLEETS / "backup_small.yaml"), "01:00-03:00")
    doc = result.to_dict()
    assert doc["window"] == "01:00-03:00" and not doc["unplaced"]
    assert len(doc["slots"]) == 8  # every placed VM; spare-01 has no host
    assert all("01:00" <= s["start"] < "03:00" for s in doc["slots"])
