"""The life cycle as a pure function: pending -> firing -> acknowledged -> resolved, grouping,
dedupe, silences (and the notice when one ends) and inhibitions, on a fixed clock."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from corral.engines.alerting import (
    AlertState,
    Common,
    Condition,
    Event,
    Inhibition,
    Silence,
    acknowledge,
    step,
)
from corral.engines.alerting.model import Alert, labels_of

RULES = {"cpu": Common("cpu", for_s=300), "down": Common("down", for_s=0)}


def cond(entity: str, host: str = "kvm-01", rule: str = "cpu", value: float = 99.0) -> Condition:
    labels = labels_of({"alertname": rule, "entity": entity, "host": host})
    return Condition(rule, labels, value, f"{entity} is at {value}")


def run(
    steps: list[tuple[float, list[Condition]]], **kw: object
) -> tuple[dict[str, Alert], list[list[tuple[str, Event, int]]]]:
    alerts: dict[str, Alert] = {}
    told = []
    for now, conds in steps:
        out = step(alerts, conds, RULES, now, **kw)  # type: ignore[arg-type]
        alerts.update({a.fingerprint: a for a in out.changed})
        told.append([(n.group, n.event, len(n.alerts)) for n in out.notifications])
    return alerts, told


def test_pending_until_for_then_firing_once_then_resolved_once() -> None:
    a = [cond("vm-1")]
    alerts, told = run([(0, a), (120, a), (300, a), (360, a), (420, [])])
    assert told == [
        [],
        [],
        [("cpu{host=kvm-01}", Event.firing, 1)],
        [],
        [("cpu{host=kvm-01}", Event.resolved, 1)],
    ]
    (only,) = alerts.values()
    assert only.state is AlertState.resolved


def test_a_pending_alert_that_goes_away_was_never_news() -> None:
    alerts, told = run([(0, [cond("vm-1")]), (60, [])])
    assert told == [[], []]
    assert next(iter(alerts.values())).state is AlertState.resolved


def test_same_labels_twice_are_one_alert_and_a_group_is_one_notification() -> None:
    conds = [cond("vm-1"), cond("vm-1"), cond("vm-2"), cond("vm-3", host="kvm-02")]
    alerts, told = run([(0, conds), (300, conds)])
    assert len(alerts) == 3
    assert sorted(told[1]) == [
        ("cpu{host=kvm-01}", Event.firing, 2),
        ("cpu{host=kvm-02}", Event.firing, 1),
    ]


def test_acknowledged_lasts_until_resolved_and_is_told_once() -> None:
    alerts, _ = run([(0, [cond("x", rule="down")])])
    (a,) = alerts.values()
    acked = acknowledge(a, "ana", 10)
    out = step({a.fingerprint: acked}, [cond("x", rule="down")], RULES, 20)
    (still,) = out.changed
    assert still.state is AlertState.acknowledged and still.acked_by == "ana"
    assert [n.event for n in out.notifications] == [Event.acknowledged]
    again = step({a.fingerprint: still}, [cond("x", rule="down")], RULES, 30)
    assert again.notifications == [] and again.changed == []
    gone = step({a.fingerprint: still}, [], RULES, 40)
    assert [n.event for n in gone.notifications] == [Event.resolved]


def test_only_a_firing_alert_can_be_acknowledged() -> None:
    alerts, _ = run([(0, [cond("vm-1")])])
    (pending,) = alerts.values()
    try:
        acknowledge(pending, "ana", 1)
    except ValueError as exc:
        assert "firing" in str(exc)
    else:
        raise AssertionError("a pending alert was acknowledged")


def test_a_silence_mutes_until_it_ends_then_its_end_is_told_once() -> None:
    silence = Silence(
        "s1", labels_of({"host": "kvm-01"}), ends_at=600, comment="", created_by="ana"
    )
    c = [cond("x", rule="down")]
    alerts: dict[str, Alert] = {}
    out = step(alerts, c, RULES, 0, silences=[silence])
    assert out.notifications == [] and out.changed[0].muted_by == "silence s1"
    alerts = {a.fingerprint: a for a in out.changed}
    out = step(alerts, c, RULES, 700, silences=[silence])
    assert sorted(n.event for n in out.notifications) == [Event.firing, Event.silence_expired]
    assert out.silences_told == ["s1"]
    expired = next(n for n in out.notifications if n.event is Event.silence_expired)
    assert [a.state for a in expired.alerts] == [AlertState.firing]
    told = Silence("s1", silence.matchers, 600, "", "ana", expiry_noticed=True)
    alerts = {a.fingerprint: a for a in out.changed}
    assert step(alerts, c, RULES, 800, silences=[told]).notifications == []


def test_inhibition_mutes_alerts_corral_itself_causes() -> None:
    maintenance = Inhibition(labels_of({"host": "kvm-01"}), "kvm-01 in maintenance")
    out = step(
        {},
        [cond("a", rule="down"), cond("b", host="kvm-02", rule="down")],
        RULES,
        0,
        inhibitions=[maintenance],
    )
    assert [(n.group, n.event) for n in out.notifications] == [("down{host=kvm-02}", Event.firing)]
    muted = [a for a in out.changed if a.muted_by]
    assert [a.muted_by for a in muted] == ["kvm-01 in maintenance"]
    # maintenance over, the condition still there: now it is told
    later = step(
        {a.fingerprint: a for a in out.changed},
        [cond("a", rule="down"), cond("b", host="kvm-02", rule="down")],
        RULES,
        60,
    )
    assert [(n.group, n.event) for n in later.notifications] == [
        ("down{host=kvm-01}", Event.firing)
    ]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.sampled_from(["a", "b", "c"]), max_size=3), min_size=1, max_size=12))
def test_each_state_change_is_told_at_most_once(rounds: list[list[str]]) -> None:
    """Property: per alert, the told events alternate firing / resolved, never repeat."""
    alerts: dict[str, Alert] = {}
    history: dict[str, list[Event]] = {}
    for i, names in enumerate(rounds):
        out = step(alerts, [cond(n, rule="down") for n in names], RULES, i * 60.0)
        alerts.update({a.fingerprint: a for a in out.changed})
        for note in out.notifications:
            for a in note.alerts:
                history.setdefault(a.fingerprint, []).append(note.event)
        for a in alerts.values():
            active = any(cond(n, rule="down").fingerprint == a.fingerprint for n in names)
            assert (a.state is AlertState.firing) == active
    for events in history.values():
        assert events[0] is Event.firing
        assert all(x is not y for x, y in itertools.pairwise(events))
