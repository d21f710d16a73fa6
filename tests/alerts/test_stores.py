"""The rules read the same answers from both metrics stores (DuckDB and a real
VictoriaMetrics): a threshold on a fresh value, a host that went silent, an anomaly in a
stored history, and nothing for a calm VM or a stale value."""

from __future__ import annotations

import math

from corral.domain.metrics import EntityKind, Sample, SampleBatch
from corral.engines.alerting import needs, parse_rules
from corral.metrics.store import MetricsStore
from corral.services.alert_inputs import read_snapshot
from corral.services.alerts import AlertService
from corral.store.db import Database
from tests.metrics.conftest import store, victoria_url  # noqa: F401  (fixtures)

NOW = 1_780_000_200  # a multiple of 300
RULES = parse_rules("""
rules:
  - {name: hot, kind: threshold, metric: cpu_pct, op: '>', value: 90}
  - {name: gone, kind: down, entity: host, after: 10m}
  - {name: new, kind: anomaly, metric: cpu_pct, history: 3d}
""")


def _samples() -> list[Sample]:
    out = []
    start = NOW - 3 * 86400
    for i, ts in enumerate(range(start, NOW, 300)):
        calm = 30 + 10 * math.sin(2 * math.pi * (ts % 86400) / 86400)
        out.append(Sample(EntityKind.vm, "calm", "kvm-01", "cpu_pct", ts, calm))
        spike = calm if ts < NOW - 600 else 400.0
        out.append(Sample(EntityKind.vm, "spiky", "kvm-01", "cpu_pct", ts, spike))
        if i % 12 == 0:  # hourly
            out.append(Sample(EntityKind.host, "kvm-01", "kvm-01", "cpu_pct", ts, 20.0))
    out.append(Sample(EntityKind.host, "kvm-01", "kvm-01", "cpu_pct", NOW - 60, 20.0))
    out.append(Sample(EntityKind.host, "kvm-02", "kvm-02", "cpu_pct", NOW - 7200, 20.0))
    out.append(Sample(EntityKind.vm, "stale", "kvm-02", "cpu_pct", NOW - 7200, 99.0))
    return out


def test_both_stores_give_the_rules_the_same_findings(
    store: MetricsStore,  # noqa: F811
    db: Database,
) -> None:
    store.write(SampleBatch.from_samples(_samples()))
    snap = read_snapshot(store, needs(RULES), NOW)
    assert snap.latest[("vm", "cpu_pct")] == {
        "calm": snap.latest[("vm", "cpu_pct")]["calm"],
        "spiky": 400.0,
    }
    assert snap.hosts["spiky"] == "kvm-01"
    report = AlertService(db, RULES, clock=lambda: NOW).evaluate_store(store)
    found = sorted((a.rule, a.label("entity") or "") for a in report.alerts)
    assert found == [("gone", "kvm-02"), ("hot", "spiky"), ("new", "spiky")]
