"""The plain data of alerting: what the rules see, what they find, and an alert's life.

A rule looks at a ``Snapshot`` (metric values and history the service read) and answers the
``Condition``s that hold now. The life cycle (``lifecycle.step``) turns conditions, the alerts
known before, silences and inhibitions into the alerts' new states and the notifications due.
Everything here is plain data: no clock, no database, no network.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from corral.engines.planning.model import Fleet

Labels = tuple[tuple[str, str], ...]  # sorted (name, value) pairs


def labels_of(mapping: Mapping[str, str]) -> Labels:
    return tuple(sorted((str(k), str(v)) for k, v in mapping.items()))


def fingerprint(labels: Labels) -> str:
    """The identity of an alert: the same labels are the same alert (dedupe)."""
    text = "\x1f".join(f"{k}\x1e{v}" for k, v in labels)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class AlertState(enum.StrEnum):
    pending = "pending"
    firing = "firing"
    acknowledged = "acknowledged"
    resolved = "resolved"


class Event(enum.StrEnum):
    """What a notification tells."""

    firing = "firing"
    acknowledged = "acknowledged"
    resolved = "resolved"
    silence_expired = "silence-expired"


class Severity(enum.StrEnum):
    info = "info"
    warning = "warning"
    critical = "critical"


@dataclass(frozen=True, slots=True)
class Series:
    """One series' samples, oldest first (epoch seconds)."""

    times: Sequence[float]
    values: Sequence[float]


MetricKey = tuple[str, str]  # (entity kind, metric)


@dataclass(frozen=True, slots=True)
class LicenceCount:
    """One licence product: deployed against owned, and the cost engine's verdict on it
    (``ok``, ``warn`` near the limit, ``over`` the limit, ``untracked``: no count owned)."""

    product: str
    deployed: int
    entitlements: int | None
    status: str


@dataclass(frozen=True, slots=True)
class BackupAge:
    """A VM the backup policy protects: its RPO and its newest restore point (epoch seconds;
    None: never backed up)."""

    vm: str
    host: str | None
    rpo_s: float
    newest: float | None


@dataclass(frozen=True)
class Snapshot:
    """What the rules may look at, read by the service at ``now``."""

    now: float
    #: (kind, metric) -> entity -> newest value
    latest: Mapping[MetricKey, Mapping[str, float]] = field(default_factory=dict)
    #: (kind, metric) -> entity -> history (for baselines, anomalies, forecasts)
    history: Mapping[MetricKey, Mapping[str, Series]] = field(default_factory=dict)
    #: kind -> entity -> time of its newest sample of any metric
    last_seen: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    #: entity -> the host it runs on (VMs) or itself (hosts): the label inhibitions match
    hosts: Mapping[str, str] = field(default_factory=dict)
    #: the fleet as the planner sees it (the HA rules), when a rule asked for it
    fleet: Fleet | None = None
    #: every licence product's use (the licence rules)
    licences: Sequence[LicenceCount] = ()
    #: every protected VM's newest restore point against its RPO (the backup rules)
    backups: Sequence[BackupAge] = ()


@dataclass(frozen=True, slots=True)
class Condition:
    """A rule's finding that holds now: ``labels`` name it, ``value`` and ``summary`` tell it."""

    rule: str
    labels: Labels
    value: float
    summary: str

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.labels)


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert's state; ``notified`` is the last state a notification went out for."""

    fingerprint: str
    rule: str
    labels: Labels
    severity: Severity
    state: AlertState
    group: str
    value: float
    summary: str
    started_at: float  # when the condition began (pending from then)
    changed_at: float  # when the state last changed
    notified: AlertState | None = None
    acked_by: str | None = None
    muted_by: str | None = None  # a silence id or an inhibition's reason, while muted

    def label(self, name: str) -> str | None:
        return dict(self.labels).get(name)


@dataclass(frozen=True, slots=True)
class Silence:
    """No notifications for alerts whose labels hold every matcher, until ``ends_at``."""

    id: str
    matchers: Labels
    ends_at: float
    comment: str
    created_by: str
    expiry_noticed: bool = False

    def matches(self, labels: Labels) -> bool:
        return set(self.matchers) <= set(labels)


@dataclass(frozen=True, slots=True)
class Inhibition:
    """A condition Corral itself causes (a host in maintenance, an HA drill, a backup):
    alerts whose labels hold every matcher are not notified while it lasts."""

    matchers: Labels
    reason: str

    def matches(self, labels: Labels) -> bool:
        return set(self.matchers) <= set(labels)


@dataclass(frozen=True, slots=True)
class Notification:
    """One message to every channel: a group's alerts that changed to ``event`` together."""

    key: str  # unique: the outbox sends each key once per channel
    group: str
    event: Event
    at: float
    alerts: tuple[Alert, ...] = ()
    silence: Silence | None = None

    @property
    def title(self) -> str:
        if self.event is Event.silence_expired and self.silence is not None:
            return f"[corral] silence {self.silence.id} expired"
        names = sorted({a.rule for a in self.alerts})
        return f"[corral] {self.event.value.upper()}: {', '.join(names)} ({len(self.alerts)})"
