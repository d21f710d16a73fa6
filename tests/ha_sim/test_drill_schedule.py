"""When a scheduled drill is due and on which host (the pure rule, with a clock in hand)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from corral.engines.ha_manager.drill_schedule import DrillSchedule, next_drill

T0 = datetime(2026, 12, 6, 2, 10, tzinfo=UTC).timestamp()
DAY = DrillSchedule(every_s=86400)
ONLINE = {"h1": "online", "h2": "online", "h3": "online"}


def test_never_drilled_fleet_drills_the_first_allowed_host() -> None:
    decision = next_drill(DAY, ["h3", "h2"], ONLINE, (), {}, False, T0)
    assert (decision.host, decision.why) == ("h2", "never drilled")


def test_nothing_while_a_drill_runs_a_host_is_down_or_in_maintenance() -> None:
    assert next_drill(DAY, ["h2"], ONLINE, (), {}, True, T0).why == "a drill is running"
    down = {**ONLINE, "h1": "fencing"}
    assert next_drill(DAY, ["h2"], down, (), {}, False, T0).why == "host h1 is fencing"
    maint = next_drill(DAY, ["h2"], ONLINE, {"h3"}, {}, False, T0)
    assert (maint.host, maint.why) == (None, "host h3 is in maintenance")


def test_one_drill_per_period_fleet_wide_then_the_longest_undrilled_host() -> None:
    last = {"h1": T0 - 3 * 86400, "h2": T0 - 3600}
    early = next_drill(DAY, ["h1", "h2"], ONLINE, (), last, False, T0)
    assert early.host is None and early.why == "next due at 2026-12-07 01:10:00 UTC"
    due = next_drill(DAY, ["h1", "h2"], ONLINE, (), last, False, T0 + 86400)
    assert due.host == "h1" and due.why.startswith("last drilled 2026-12-03")


def test_only_in_the_schedule_hours() -> None:
    nightly = DrillSchedule(every_s=3600, hours_utc=frozenset({2, 3}))
    assert next_drill(nightly, ["h1"], ONLINE, (), {}, False, T0).host == "h1"
    later = next_drill(nightly, ["h1"], ONLINE, (), {}, False, T0 + 2 * 3600)
    assert (later.host, later.why) == (None, "outside the drill hours (2,3 UTC)")


def test_an_allowed_host_the_manager_does_not_watch_is_never_drilled() -> None:
    decision = next_drill(DAY, ["h9"], ONLINE, (), {}, False, T0)
    assert decision.host is None and "allows" in decision.why


@given(
    allowed=st.sets(st.sampled_from(sorted(ONLINE)), min_size=1),
    rounds=st.integers(min_value=1, max_value=12),
)
def test_allowed_hosts_are_drilled_in_turn_never_more_than_once_a_period(
    allowed: set[str], rounds: int
) -> None:
    last: dict[str, float] = {}
    drilled: list[tuple[float, str]] = []
    now = T0
    for _ in range(rounds * 24):  # every hour for ``rounds`` days
        decision = next_drill(DAY, sorted(allowed), ONLINE, (), last, False, now)
        if decision.host is not None:
            assert decision.host in allowed
            drilled.append((now, decision.host))
            last[decision.host] = now
        now += 3600
    assert len(drilled) == rounds
    assert all(b[0] - a[0] >= DAY.every_s for a, b in itertools.pairwise(drilled))
    hosts = [h for _, h in drilled]
    for i, host in enumerate(hosts):  # in turn: no host again before each other had one
        assert host == sorted(allowed)[i % len(allowed)]
