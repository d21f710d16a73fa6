"""Alert evaluation with a memory: states, silences and the outbox of notifications.

Why an outbox: deciding that a notification is due and sending it are two steps, and the
process may die between them. ``evaluate`` and ``acknowledge`` store the new alert states and
one outbox row per notification and channel in ONE transaction; ``deliver`` then sends every
unsent row and marks it sent. A row is unique per (notification key, channel), so a
notification is written once; a process killed before sending leaves the row unsent, and the
next ``deliver`` (after a restart) sends it. A failed send is retried with exponential
backoff; each channel is delivered by its own worker, so a dead endpoint holds up only
itself. Every write goes through the session, so the audit log records acks and silences.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from corral.engines.alerting import (
    Alert,
    AlertState,
    Inhibition,
    Notification,
    RuleSet,
    Severity,
    Silence,
    Snapshot,
    acknowledge,
    evaluate,
    needs,
    step,
)
from corral.engines.alerting.lifecycle import due
from corral.engines.alerting.model import labels_of
from corral.errors import ConfigError, ConflictError, NotFoundError, ValidationError
from corral.metrics.store.base import MetricsStore
from corral.notify.channels import Channel, ChannelError, Message
from corral.notify.channels.base import AlertItem
from corral.services.alert_inputs import read_snapshot
from corral.store import models as m
from corral.store.db import Database

if TYPE_CHECKING:
    from corral.services.alert_facts import FactReader


@dataclass(frozen=True)
class Backoff:
    """Seconds before retry n (1, 2, ...): ``base * 2**(n-1)``, at most ``cap``."""

    base_s: float = 30.0
    cap_s: float = 3600.0

    def delay(self, attempts: int) -> float:
        return float(min(self.cap_s, self.base_s * 2.0 ** max(0, attempts - 1)))


@dataclass(frozen=True)
class EvaluationReport:
    conditions: int
    changed: int
    notifications: int
    queued: int  # outbox rows written (notifications x channels)
    alerts: list[Alert]


@dataclass(frozen=True)
class Delivery:
    channel: str
    key: str
    sent: bool
    attempts: int
    error: str | None = None


@dataclass(frozen=True)
class OutboxItem:
    id: int
    channel: str
    event: str
    group: str
    attempts: int
    sent_at: float | None
    last_error: str | None


class AlertService:
    def __init__(
        self,
        db: Database,
        rules: RuleSet,
        channels: Sequence[Channel] = (),
        *,
        clock: Callable[[], float] = time.time,
        backoff: Backoff = Backoff(),
    ) -> None:
        self.db = db
        self.rules = rules
        self.channels = {c.name: c for c in channels}
        self.clock = clock
        self.backoff = backoff

    # -- reading ------------------------------------------------------------------------
    def alerts(self, state: AlertState | None = None) -> list[Alert]:
        with self.db.session() as s:
            q = select(m.AlertRow).order_by(m.AlertRow.changed_at.desc(), m.AlertRow.fingerprint)
            if state is not None:
                q = q.where(m.AlertRow.state == state.value)
            return [_alert(r) for r in s.scalars(q)]

    def silences(self) -> list[Silence]:
        with self.db.session() as s:
            rows = s.scalars(select(m.AlertSilenceRow).order_by(m.AlertSilenceRow.ends_at))
            return [_silence(r) for r in rows]

    def outbox(self) -> list[OutboxItem]:
        with self.db.session() as s:
            rows = s.scalars(select(m.AlertOutboxRow).order_by(m.AlertOutboxRow.id))
            return [
                OutboxItem(
                    r.id,
                    r.channel,
                    str(r.payload.get("event")),
                    str(r.payload.get("group")),
                    r.attempts,
                    r.sent_at,
                    r.last_error,
                )
                for r in rows
            ]

    # -- deciding -----------------------------------------------------------------------
    def evaluate(
        self, snapshot: Snapshot, inhibitions: Sequence[Inhibition] = ()
    ) -> EvaluationReport:
        """Run the rules on ``snapshot``; store the states and queue the notifications."""
        conditions = evaluate(self.rules, snapshot)
        with self.db.session() as s:
            rows = {r.fingerprint: r for r in s.scalars(select(m.AlertRow))}
            previous = {fp: _alert(r) for fp, r in rows.items()}
            silence_rows = list(s.scalars(select(m.AlertSilenceRow)))
            outcome = step(
                previous,
                conditions,
                self.rules.commons,
                snapshot.now,
                group_by=self.rules.group_by,
                silences=[_silence(r) for r in silence_rows],
                inhibitions=inhibitions,
            )
            _store(s, outcome.changed, rows)
            for row in silence_rows:
                if row.id in outcome.silences_told:
                    row.expiry_noticed = True
            queued = self._queue(s, outcome.notifications, snapshot.now)
        return EvaluationReport(
            len(conditions),
            len(outcome.changed),
            len(outcome.notifications),
            queued,
            outcome.changed,
        )

    def evaluate_store(
        self,
        store: MetricsStore,
        now: float | None = None,
        inhibitions: Sequence[Inhibition] = (),
        facts: FactReader | None = None,
    ) -> EvaluationReport:
        """Read what the rules need from the metrics store (and, for the HA, licence and
        backup rules, from ``facts``) at ``now`` and evaluate."""
        at = int(self.clock() if now is None else now)
        wanted = needs(self.rules)
        snapshot = read_snapshot(store, wanted, at)
        if wanted.facts:
            if facts is None:
                raise ConfigError(
                    "these alert rules read the fleet, licences or backups, which this caller "
                    "cannot give; evaluate them with 'corral alerts evaluate' or the server."
                )
            found = facts.read(wanted.facts)
            snapshot = replace(
                snapshot, fleet=found.fleet, licences=found.licences, backups=found.backups
            )
        return self.evaluate(snapshot, inhibitions)

    def acknowledge(self, fingerprint: str, user: str) -> Alert:
        """A firing alert acknowledged until it resolves; the group is told at once."""
        now = self.clock()
        with self.db.session() as s:
            row = s.get(m.AlertRow, fingerprint)
            if row is None:
                raise NotFoundError(f"no alert {fingerprint!r}; 'corral alerts list' shows them.")
            try:
                acked = acknowledge(_alert(row), user, now)
            except ValueError as exc:
                raise ConflictError(f"alert {fingerprint}: {exc}.") from None
            told, notes = due([acked], now)
            _store(s, list(told.values()), {fingerprint: row})
            self._queue(s, notes, now)
            return told[fingerprint]

    def silence(
        self, matchers: Mapping[str, str], ends_at: float, comment: str, user: str
    ) -> Silence:
        """No notifications for alerts with all these labels until ``ends_at``."""
        now = self.clock()
        if not matchers:
            raise ValidationError("a silence needs at least one label to match, e.g. host=kvm-03.")
        if ends_at <= now:
            raise ValidationError("a silence must end in the future.")
        silence = Silence(secrets.token_hex(8), labels_of(matchers), ends_at, comment[:500], user)
        with self.db.session() as s:
            s.add(
                m.AlertSilenceRow(
                    id=silence.id,
                    matchers=dict(silence.matchers),
                    ends_at=ends_at,
                    comment=silence.comment,
                    created_by=user,
                    expiry_noticed=False,
                )
            )
        return silence

    def _queue(self, s: Session, notes: Sequence[Notification], now: float) -> int:
        """One outbox row per notification and channel (a key already queued is skipped)."""
        if not self.channels or not notes:
            return 0
        keyed = {hashlib.sha256(n.key.encode()).hexdigest(): n for n in notes}
        known: set[tuple[str, str]] = set()
        keys = list(keyed)
        for i in range(0, len(keys), 500):
            found = s.execute(
                select(m.AlertOutboxRow.key, m.AlertOutboxRow.channel).where(
                    m.AlertOutboxRow.key.in_(keys[i : i + 500])
                )
            )
            known |= {(key, channel) for key, channel in found}
        fresh = [
            m.AlertOutboxRow(
                key=key,
                channel=name,
                payload=message_of(note).to_json(),
                created_at=now,
                attempts=0,
                next_attempt_at=now,
            )
            for key, note in keyed.items()
            for name in self.channels
            if (key, name) not in known
        ]
        s.add_all(fresh)
        return len(fresh)

    # -- sending ------------------------------------------------------------------------
    def deliver(self) -> list[Delivery]:
        """Send every due outbox row; one worker per channel, so none waits for another."""
        now = self.clock()
        with self.db.session() as s:
            due_rows = s.execute(
                select(m.AlertOutboxRow.id, m.AlertOutboxRow.channel)
                .where(m.AlertOutboxRow.sent_at.is_(None))
                .where(m.AlertOutboxRow.next_attempt_at <= now)
                .order_by(m.AlertOutboxRow.id)
            ).all()
        by_channel: dict[str, list[int]] = defaultdict(list)
        for row_id, channel in due_rows:
            if channel in self.channels:
                by_channel[channel].append(row_id)
        if not by_channel:
            return []
        with ThreadPoolExecutor(max_workers=len(by_channel)) as pool:
            results = pool.map(self._deliver_channel, by_channel, by_channel.values())
        return [d for batch in results for d in batch]

    def _deliver_channel(self, channel: str, ids: list[int]) -> list[Delivery]:
        return [self._send_one(channel, row_id) for row_id in ids]

    def _send_one(self, channel: str, row_id: int) -> Delivery:
        with self.db.session() as s:
            row = s.get(m.AlertOutboxRow, row_id)
            assert row is not None
            message = Message.from_json(dict(row.payload))
            key = row.key
        error: str | None = None
        try:
            self.channels[channel].send(message)
        except ChannelError as exc:
            error = exc.message
        now = self.clock()
        with self.db.session() as s:
            row = s.get(m.AlertOutboxRow, row_id)
            assert row is not None
            row.attempts += 1
            if error is None:
                row.sent_at = now
                row.last_error = None
            else:
                row.last_error = error[:1000]
                row.next_attempt_at = now + self.backoff.delay(row.attempts)
            attempts = row.attempts
        return Delivery(channel, key, error is None, attempts, error)


def _store(s: Session, alerts: Sequence[Alert], rows: Mapping[str, m.AlertRow]) -> None:
    """Write the alerts onto their loaded ``rows`` (new ones added): no query per alert."""
    for a in alerts:
        row = rows.get(a.fingerprint)
        if row is None:
            row = m.AlertRow(fingerprint=a.fingerprint)
            s.add(row)
        row.rule = a.rule
        row.labels = dict(a.labels)
        row.severity = a.severity.value
        row.state = a.state.value
        row.group_key = a.group[:512]
        row.value = a.value
        row.summary = a.summary
        row.started_at = a.started_at
        row.changed_at = a.changed_at
        row.notified = a.notified.value if a.notified else None
        row.acked_by = a.acked_by
        row.muted_by = a.muted_by


def _alert(r: m.AlertRow) -> Alert:
    return Alert(
        fingerprint=r.fingerprint,
        rule=r.rule,
        labels=labels_of(r.labels),
        severity=Severity(r.severity),
        state=AlertState(r.state),
        group=r.group_key,
        value=r.value,
        summary=r.summary,
        started_at=r.started_at,
        changed_at=r.changed_at,
        notified=AlertState(r.notified) if r.notified else None,
        acked_by=r.acked_by,
        muted_by=r.muted_by,
    )


def _silence(r: m.AlertSilenceRow) -> Silence:
    return Silence(
        r.id, labels_of(r.matchers), r.ends_at, r.comment, r.created_by, r.expiry_noticed
    )


def message_of(note: Notification) -> Message:
    """A notification as the plain message the outbox keeps and the channels send."""
    items = tuple(
        AlertItem(
            a.fingerprint,
            a.rule,
            a.state.value,
            a.severity.value,
            a.summary,
            a.value,
            a.started_at,
            dict(a.labels),
        )
        for a in note.alerts
    )
    silence = note.silence.id if note.silence else None
    return Message(note.key, note.event.value, note.group, note.title, note.at, items, silence)
