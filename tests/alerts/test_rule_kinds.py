"""Each rule kind on a snapshot made of plain numbers (no store, no clock)."""

from __future__ import annotations

import math

import pytest

from corral.engines.alerting import BackupAge, Series, Snapshot, evaluate, needs, parse_rules
from corral.engines.alerting.loader import example_text, load_rules
from corral.errors import ConfigError

HOUR = 3600.0
NOW = 1_780_000_000.0


def rules(text: str):  # type: ignore[no-untyped-def]
    return parse_rules(text, "test rules")


def test_threshold_fires_only_past_its_value_and_labels_the_host() -> None:
    rs = rules("rules: [{name: hot, kind: threshold, metric: cpu_pct, op: '>=', value: 90}]")
    snap = Snapshot(NOW, latest={("vm", "cpu_pct"): {"a": 90.0, "b": 89.9}}, hosts={"a": "kvm-01"})
    (c,) = evaluate(rs, snap)
    assert dict(c.labels) == {
        "alertname": "hot",
        "entity": "a",
        "host": "kvm-01",
        "kind": "vm",
        "metric": "cpu_pct",
        "severity": "warning",
    }
    assert c.value == 90.0


def _weekly(days: int, level: float = 20.0) -> Series:
    times = [NOW - days * 86400 + i * 300 for i in range(days * 288)]
    values = [level + 5 * math.sin(2 * math.pi * (t % 86400) / 86400) for t in times]
    return Series(times, values)


def test_baseline_band_learns_first_then_flags_a_value_far_above_its_hour() -> None:
    rs = rules("rules: [{name: odd, kind: baseline, metric: cpu_pct}]")
    key = ("vm", "cpu_pct")
    young = Snapshot(NOW, latest={key: {"a": 95.0}}, history={key: {"a": _weekly(3)}})
    assert evaluate(rs, young) == []  # still learning: under 7 days
    usual = 20 + 5 * math.sin(2 * math.pi * (NOW % 86400) / 86400)
    grown = Snapshot(
        NOW,
        latest={key: {"a": 95.0, "b": usual}},
        history={key: {"a": _weekly(10), "b": _weekly(10)}},
    )
    assert [dict(c.labels)["entity"] for c in evaluate(rs, grown)] == ["a"]


def test_anomaly_rule_uses_the_streaming_detector_on_the_latest_samples() -> None:
    rs = rules("rules: [{name: new, kind: anomaly, metric: cpu_pct, entity: host}]")
    key = ("host", "cpu_pct")
    calm = _weekly(3)
    spiked = Series([*list(calm.times), NOW + 300], [*list(calm.values), 400.0])
    snap = Snapshot(NOW, history={key: {"calm": calm, "spiked": spiked}})
    assert [dict(c.labels)["entity"] for c in evaluate(rs, snap)] == ["spiked"]


def test_runway_sees_a_host_filling_up_but_not_a_flat_one() -> None:
    rs = rules("rules: [{name: full, kind: runway, metric: mem_used_pct, limit: 100, days: 14}]")
    key = ("host", "mem_used_pct")
    times = [NOW - 21 * 86400 + i * HOUR for i in range(21 * 24)]
    rising = Series(times, [50 + 2.0 * (t - times[0]) / 86400 for t in times])  # 92 % now, +2/day
    flat = Series(times, [60.0 for _ in times])
    (c,) = evaluate(rs, Snapshot(NOW, history={key: {"rising": rising, "flat": flat}}))
    assert dict(c.labels)["entity"] == "rising"
    assert 2 < c.value < 7  # days left: (100 - 92) / 2 = 4


def test_down_fires_for_a_silent_host_only() -> None:
    rs = rules("rules: [{name: gone, kind: down, entity: host, after: 5m}]")
    snap = Snapshot(NOW, last_seen={"host": {"up": NOW - 60, "gone": NOW - 900}})
    assert [dict(c.labels)["entity"] for c in evaluate(rs, snap)] == ["gone"]


def test_needs_merge_the_longest_history_per_series() -> None:
    rs = rules("""rules:
  - {name: a, kind: anomaly, metric: cpu_pct, history: 2d}
  - {name: b, kind: baseline, metric: cpu_pct, history: 28d}
  - {name: c, kind: down, entity: collector}""")
    n = needs(rs)
    assert n.history == {("vm", "cpu_pct"): 28 * 86400.0}
    assert n.latest == frozenset({("vm", "cpu_pct")}) and n.last_seen == frozenset({"collector"})


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("rules: [{name: a, kind: nope}]", "'kind' must be one of"),
        ("rules: [{name: a, kind: threshold, metric: m}]", "value"),
        ("rules: [{name: a, kind: threshold, metric: m, value: 1, colour: red}]", "colour"),
        ("rules: [{name: a, kind: down, for: soon}]", "duration"),
        ("rules: [{name: a, kind: down}, {name: a, kind: down}]", "unique"),
        ("rulez: []", "unknown keys"),
    ],
)
def test_a_wrong_rules_file_is_one_clear_error(text: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        rules(text)


def test_the_shipped_example_loads_with_every_kind() -> None:
    rs = load_rules(None)
    assert {r.kind for r in rs.rules} == {"threshold", "baseline", "anomaly", "runway", "down"}
    assert "channels" in example_text()


def test_the_example_names_only_metrics_the_collector_writes() -> None:
    from corral.metrics.catalog import METRICS

    known = {(str(m.kind), m.name) for m in METRICS}
    for rule in load_rules(None).rules:
        for key in (*rule.needs().latest, *rule.needs().history):
            assert key in known, (rule.name, key)


def test_baseline_band_ignores_a_wobble_on_a_flat_series_and_low_values() -> None:
    key = ("vm", "cpu_pct")
    times = [NOW - 10 * 86400 + i * 300 for i in range(10 * 288)]
    flat = Series(times, [0.78 for _ in times])
    snap = Snapshot(
        NOW,
        latest={key: {"flat": 0.83, "busy": 60.0}},
        history={key: {"flat": flat, "busy": _weekly(10)}},
    )
    assert evaluate(rules("rules: [{name: b, kind: baseline, metric: cpu_pct}]"), snap) != []
    found = evaluate(
        rules("rules: [{name: b, kind: baseline, metric: cpu_pct, min_value: 20}]"), snap
    )
    assert [dict(c.labels)["entity"] for c in found] == ["busy"]
    wobble = Snapshot(NOW, latest={key: {"flat": 0.83}}, history={key: {"flat": flat}})
    assert evaluate(rules("rules: [{name: b, kind: baseline, metric: cpu_pct}]"), wobble) == []


def test_the_new_kinds_check_their_parameters_and_need_only_their_facts() -> None:
    with pytest.raises(ConfigError, match="policy"):
        rules("rules: [{name: h, kind: ha, policy: failover-hosts}]")
    with pytest.raises(ConfigError, match="when"):
        rules("rules: [{name: l, kind: licence, when: soon}]")
    quiet = rules("rules: [{name: r, kind: backup_rpo, never: false}]")
    snap = Snapshot(1e9, backups=(BackupAge("vm-x", "h", 3600.0, None),))
    assert evaluate(quiet, snap) == []
    both = rules("rules: [{name: r, kind: backup_rpo}, {name: l, kind: licence}]")
    assert needs(both).facts == {"backups", "licences"}
