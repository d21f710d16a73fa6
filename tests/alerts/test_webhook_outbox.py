"""The service's outbox with the webhook channel against real local HTTP servers: signed
bodies, once per group and state change, retries with exponential backoff, a dead endpoint
that never holds the others up; on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from pathlib import Path

from corral.engines.alerting import AlertState, Inhibition, Snapshot, parse_rules
from corral.engines.alerting.model import labels_of
from corral.notify.channels import WebhookChannel
from corral.services.alerts import AlertService, Backoff
from corral.store.db import Database
from tests.alerts.receivers import black_hole, http_receiver

RULES = parse_rules(
    "rules: [{name: hot, kind: threshold, metric: cpu_pct, op: '>', value: 90, for: 60}]"
)
SECRET = "s3cret-key-for-tests"
T0 = 1_780_000_000.0


def snap(now: float, **cpu: float) -> Snapshot:
    hosts = {vm: ("kvm-01" if vm < "m" else "kvm-02") for vm in cpu}
    return Snapshot(now, latest={("vm", "cpu_pct"): cpu}, hosts=hosts)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


class Service(AlertService):
    """The service with its clock moved to each snapshot's time (as a live loop would be)."""

    def evaluate(self, snapshot: Snapshot, inhibitions=()):  # type: ignore[no-untyped-def]
        assert isinstance(self.clock, Clock)
        self.clock.now = snapshot.now
        return super().evaluate(snapshot, inhibitions)


def service(db: Database, *channels: WebhookChannel, clock: Clock | None = None) -> AlertService:
    return Service(db, RULES, channels, clock=clock or Clock(), backoff=Backoff(30, 600))


def test_signed_once_per_group_and_state_change(db: Database) -> None:
    with http_receiver() as rx:
        svc = service(db, WebhookChannel("hook", rx.url, SECRET))
        svc.evaluate(snap(T0, a=95, b=99, z=97))  # pending: nothing yet
        assert svc.deliver() == []
        report = svc.evaluate(snap(T0 + 60, a=95, b=99, z=97))
        assert (report.notifications, report.queued) == (2, 2)  # kvm-01 and kvm-02 groups
        svc.evaluate(snap(T0 + 120, a=96, b=99, z=97))  # still firing: nothing new
        assert [d.sent for d in svc.deliver()] == [True, True]
        svc.evaluate(snap(T0 + 180, z=97))  # a and b resolve together
        assert len(svc.deliver()) == 1
    bodies = [json.loads(r.body) for r in rx.requests]
    assert [(b["event"], b["group"], len(b["alerts"])) for b in bodies] == [
        ("firing", "hot{host=kvm-01}", 2),
        ("firing", "hot{host=kvm-02}", 1),
        ("resolved", "hot{host=kvm-01}", 2),
    ]
    for r in rx.requests:
        expected = hmac.new(SECRET.encode(), r.body, hashlib.sha256).hexdigest()
        assert r.headers["X-Corral-Signature"] == f"sha256={expected}"
        assert SECRET not in r.body.decode()
    assert svc.deliver() == []


def test_a_failed_send_is_retried_with_exponential_backoff(db: Database) -> None:
    clock = Clock()
    with http_receiver(fail_first=2) as rx:
        svc = service(db, WebhookChannel("hook", rx.url, SECRET), clock=clock)
        svc.evaluate(snap(T0, a=95))
        svc.evaluate(snap(T0 + 60, a=95))
        (first,) = svc.deliver()
        assert (first.sent, first.attempts) == (False, 1) and "500" in (first.error or "")
        clock.now += 29
        assert svc.deliver() == []  # 30 s not over
        clock.now += 1
        (second,) = svc.deliver()
        assert (second.sent, second.attempts) == (False, 2)
        clock.now += 59
        assert svc.deliver() == []  # now 60 s: doubled
        clock.now += 1
        (third,) = svc.deliver()
        assert (third.sent, third.attempts) == (True, 3)
    ids = {r.headers["X-Corral-Delivery"] for r in rx.requests}
    assert len(rx.requests) == 3 and len(ids) == 1  # the same delivery each time


def test_a_dead_endpoint_never_blocks_the_others(db: Database) -> None:
    with black_hole() as dead_url, http_receiver() as rx:
        dead = WebhookChannel("a-dead", dead_url, SECRET, timeout_s=8)
        svc = service(db, dead, WebhookChannel("b-live", rx.url, SECRET))
        svc.evaluate(snap(T0, a=95))
        svc.evaluate(snap(T0 + 60, a=95))
        result: list[object] = []
        worker = threading.Thread(target=lambda: result.extend(svc.deliver()))
        worker.start()
        assert rx.got.wait(15), "the live endpoint waited for the dead one"
        assert worker.is_alive()  # the dead endpoint is still holding its own worker
        worker.join(60)
    by_channel = {d.channel: d for d in result}  # type: ignore[attr-defined]
    assert by_channel["b-live"].sent and not by_channel["a-dead"].sent
    assert "Timeout" in (by_channel["a-dead"].error or "")
    rows = {o.channel: o for o in svc.outbox()}
    assert rows["a-dead"].sent_at is None and rows["a-dead"].attempts == 1


def test_ack_lasts_until_resolved_silence_and_inhibition_mute(db: Database) -> None:
    clock = Clock()
    with http_receiver() as rx:
        svc = service(db, WebhookChannel("hook", rx.url, SECRET), clock=clock)
        svc.evaluate(snap(T0, a=95, z=95))
        svc.evaluate(
            snap(T0 + 60, a=95, z=95), [Inhibition(labels_of({"host": "kvm-02"}), "drill")]
        )
        (firing,) = [a for a in svc.alerts() if a.label("host") == "kvm-01"]
        acked = svc.acknowledge(firing.fingerprint, "ana")
        assert acked.state is AlertState.acknowledged
        svc.silence({"host": "kvm-01"}, T0 + 600, "patching", "ana")
        svc.evaluate(
            snap(T0 + 120, a=95, z=95), [Inhibition(labels_of({"host": "kvm-02"}), "drill")]
        )
        assert svc.alerts(AlertState.acknowledged)[0].fingerprint == firing.fingerprint
        svc.deliver()
        svc.evaluate(snap(T0 + 700, a=95, z=95))  # silence over, drill over
        svc.deliver()
    events = [(json.loads(r.body)["event"], json.loads(r.body)["group"]) for r in rx.requests]
    assert events == [
        ("firing", "hot{host=kvm-01}"),
        ("acknowledged", "hot{host=kvm-01}"),
        ("firing", "hot{host=kvm-02}"),
        ("silence-expired", f"silence:{svc.silences()[0].id}"),
    ]


def test_the_outbox_keeps_no_secret(db: Database, tmp_path: Path) -> None:
    with http_receiver() as rx:
        svc = service(db, WebhookChannel("hook", rx.url, SECRET))
        svc.evaluate(snap(T0, a=95))
        svc.evaluate(snap(T0 + 60, a=95))
    with db.engine.connect() as conn:
        dumped = " ".join(str(row) for row in conn.exec_driver_sql("SELECT * FROM alert_outbox"))
    assert "firing" in dumped and SECRET not in dumped
