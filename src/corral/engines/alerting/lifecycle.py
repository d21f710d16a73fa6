"""An alert's life: pending -> firing (after its rule's ``for``) -> acknowledged (until it
resolves) -> resolved; and which notifications are due.

Why one pure step: the service calls ``step`` with what it knows (the alerts it stored, the
conditions found now, silences, inhibitions) and stores what comes back, so the same code runs
live, in a replay and in a test with a fixed clock.

- Dedupe: an alert is its labels' fingerprint; the same finding again is the same alert.
- Grouping: alerts of one rule with equal values of the ``group_by`` labels are one group;
  a group's alerts that change to the same state in one step make one notification.
- A notification is due when an alert's state is not the one last notified (``notified``), so
  each state change is told once; a pending alert that goes away was never news.
- Muted: an alert matching an active silence or an inhibition (maintenance, a drill: Corral
  itself causes it) is tracked but not notified; once unmuted, a change still untold is told.
- A silence that ended is told once ("silence-expired"), with the alerts it was hiding.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from corral.engines.alerting.kinds import Common
from corral.engines.alerting.model import (
    Alert,
    AlertState,
    Condition,
    Event,
    Inhibition,
    Labels,
    Notification,
    Silence,
)

_EVENT = {
    AlertState.firing: Event.firing,
    AlertState.acknowledged: Event.acknowledged,
    AlertState.resolved: Event.resolved,
}
_TOLD = (AlertState.firing, AlertState.acknowledged)


@dataclass(frozen=True)
class Outcome:
    changed: list[Alert]  # alerts new or different from before (to store)
    notifications: list[Notification]
    silences_told: list[str]  # ids of silences whose expiry was told


def group_of(rule: str, labels: Labels, group_by: Sequence[str]) -> str:
    values = dict(labels)
    parts = ",".join(f"{k}={values.get(k, '')}" for k in group_by)
    return f"{rule}{{{parts}}}"


def step(
    previous: Mapping[str, Alert],
    conditions: Iterable[Condition],
    rules: Mapping[str, Common],
    now: float,
    *,
    group_by: Sequence[str] = ("host",),
    silences: Sequence[Silence] = (),
    inhibitions: Sequence[Inhibition] = (),
) -> Outcome:
    """The alerts after one evaluation at ``now``, and the notifications due."""
    current: dict[str, Alert] = {}
    for c in conditions:
        fp = c.fingerprint
        if fp not in current:
            current[fp] = _advance(previous.get(fp), c, rules[c.rule], now, group_by)
    for fp, prev in previous.items():
        if fp not in current and prev.state is not AlertState.resolved:
            current[fp] = replace(prev, state=AlertState.resolved, changed_at=now)
    live = [s for s in silences if s.ends_at > now]
    muted = {
        fp: replace(a, muted_by=_muter(a.labels, live, inhibitions)) for fp, a in current.items()
    }
    told, notifications = due(muted.values(), now)
    changed = [a for fp, a in told.items() if previous.get(fp) != a]
    ended = [s for s in silences if s.ends_at <= now and not s.expiry_noticed]
    notifications += [_expired(s, told.values(), now) for s in ended]
    return Outcome(changed, notifications, [s.id for s in ended])


def _advance(
    prev: Alert | None, c: Condition, common: Common, now: float, group_by: Sequence[str]
) -> Alert:
    if prev is None or prev.state is AlertState.resolved:
        state = AlertState.firing if common.for_s <= 0 else AlertState.pending
        return Alert(
            c.fingerprint,
            c.rule,
            c.labels,
            common.severity,
            state,
            group_of(c.rule, c.labels, group_by),
            c.value,
            c.summary,
            started_at=now,
            changed_at=now,
        )
    state = prev.state
    if state is AlertState.pending and now - prev.started_at >= common.for_s:
        state = AlertState.firing
    changed_at = now if state is not prev.state else prev.changed_at
    return replace(prev, state=state, value=c.value, summary=c.summary, changed_at=changed_at)


def _muter(
    labels: Labels, silences: Sequence[Silence], inhibitions: Sequence[Inhibition]
) -> str | None:
    for s in silences:
        if s.matches(labels):
            return f"silence {s.id}"
    for i in inhibitions:
        if i.matches(labels):
            return i.reason
    return None


def due(alerts: Iterable[Alert], now: float) -> tuple[dict[str, Alert], list[Notification]]:
    """Mark the alerts whose state is untold as told; one notification per group and event."""
    out: dict[str, Alert] = {}
    groups: dict[tuple[str, Event], list[Alert]] = {}
    for a in alerts:
        event = _EVENT.get(a.state)
        tell = event is not None and a.muted_by is None and a.notified is not a.state
        if a.state is AlertState.resolved and a.notified not in _TOLD:
            tell = False  # never told it fired: its end is not news either
        if tell and event is not None:
            a = replace(a, notified=a.state)
            groups.setdefault((a.group, event), []).append(a)
        out[a.fingerprint] = a
    notes = [_notification(g, e, members, now) for (g, e), members in sorted(groups.items())]
    return out, notes


def _notification(group: str, event: Event, alerts: list[Alert], now: float) -> Notification:
    alerts = sorted(alerts, key=lambda a: a.fingerprint)
    digest = hashlib.sha256("".join(a.fingerprint for a in alerts).encode()).hexdigest()[:12]
    key = f"{group}|{event.value}|{now:.0f}|{digest}"
    return Notification(key, group, event, now, tuple(alerts))


def _expired(silence: Silence, alerts: Iterable[Alert], now: float) -> Notification:
    hidden = tuple(a for a in alerts if a.state in _TOLD and silence.matches(a.labels))
    return Notification(
        f"silence:{silence.id}|{Event.silence_expired.value}",
        f"silence:{silence.id}",
        Event.silence_expired,
        now,
        hidden,
        silence,
    )


def acknowledge(alert: Alert, user: str, now: float) -> Alert:
    """A firing alert, acknowledged by ``user`` until it resolves."""
    if alert.state is not AlertState.firing:
        raise ValueError(f"only a firing alert can be acknowledged; this one is {alert.state}")
    return replace(alert, state=AlertState.acknowledged, acked_by=user, changed_at=now)
