"""Alert evaluation at fleet scale: rules for 10,000 VMs x 20 metrics in one pass, on DuckDB
and on VictoriaMetrics (a real ``victoria-metrics`` server started for the run).

    .venv/bin/python benchmarks/bench_alerts.py [--vms 10000] [--metrics 20] [--samples 5]
        [--backends duckdb,victoriametrics]

The store holds ``--samples`` one-minute samples of every series (the last minutes, as a live
collector leaves them) plus hourly samples of 100 hosts, one of them silent for an hour. The
rules: one threshold per metric (about 1 % of the values breach it) and a host-down rule.
The pass: read the newest values from the store, evaluate every rule, step the life cycle and store
the states and the outbox (SQLite) - twice, the second pass finding the alerts already known,
then once more a minute later after one new sample a series (the steady state: on
VictoriaMetrics the passes' store reads the whole window once, then only what is new).
Target: one pass under 10 s on 2 cores. ``cpu s``: CPU seconds of the benchmark and the server.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from corral.domain.metrics import EntityKind, SampleBatch, SeriesKey
from corral.engines.alerting import evaluate, needs, parse_rules
from corral.metrics.store import MetricsStore, VictoriaMetricsStore
from corral.services.alert_inputs import read_snapshot
from corral.services.alerts import AlertService
from corral.store.db import Database

sys.path.insert(0, str(Path(__file__).parent))
from bench_metrics import open_backend

NOW = 1_780_000_200
HOSTS = 100


def rules_text(metrics: int) -> str:
    lines = ["group_by: [host]", "rules:"]
    lines += [
        f"  - {{name: m{i}-high, kind: threshold, metric: m{i}, op: '>', value: 99}}"
        for i in range(metrics)
    ]
    lines.append("  - {name: host-down, kind: down, entity: host, after: 10m}")
    return "\n".join(lines)


def fill(
    store: MetricsStore,
    vms: int,
    metrics: int,
    samples: int,
    now: int = NOW,
    seed: int = 7,
    silent_since: int | None = None,
) -> int:
    rng = np.random.default_rng(seed)
    series = [
        SeriesKey(EntityKind.vm, f"vm-{v:05d}", f"m{i}") for v in range(vms) for i in range(metrics)
    ]
    series += [SeriesKey(EntityKind.host, f"kvm-{h:03d}", "cpu_pct") for h in range(HOSTS)]
    hosts = [f"kvm-{h:03d}" for h in range(HOSTS)]
    n_vm = vms * metrics
    host_of = np.r_[(np.arange(n_vm) // metrics) % HOSTS, np.arange(HOSTS)]
    written = 0
    for k in range(samples):
        ts = np.full(len(series), now - 60 * (samples - k), dtype=np.int64)
        ts[n_vm + 1] = now - 3600 if silent_since is None else silent_since  # kvm-001 silent
        values = rng.uniform(0, 100, len(series))
        batch = SampleBatch(series, hosts, np.arange(len(series)), host_of, ts, values)
        written += store.write(batch)
    return written


def cpu_seconds() -> float:
    """CPU time of this process and of its children still running (the victoria-metrics
    server): on a loaded machine the wall clock says little, the CPU spent says more."""
    total = time.process_time()
    tick = os.sysconf("SC_CLK_TCK")
    for task in Path("/proc/self/task").iterdir():
        with contextlib.suppress(OSError):  # a thread or a child may end while read
            for pid in (task / "children").read_text().split():
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def timed(label: str, rows: list[tuple[str, float, float, str]], fn, note=lambda r: ""):  # type: ignore[no-untyped-def]
    start, cpu = time.perf_counter(), cpu_seconds()
    result = fn()
    rows.append((label, time.perf_counter() - start, cpu_seconds() - cpu, note(result)))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=10_000)
    parser.add_argument("--metrics", type=int, default=20)
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--backends", default="duckdb,victoriametrics")
    args = parser.parse_args()
    rules = parse_rules(rules_text(args.metrics), "benchmark rules")
    print(
        f"rules for {args.vms:,} VMs x {args.metrics} metrics + {HOSTS} hosts "
        f"({args.vms * args.metrics:,} series), {args.samples} samples each"
    )
    for backend in args.backends.split(","):
        rows = run_backend(backend, rules, args)
        print(f"\n{backend}")
        print(f"{'step':<48} {'seconds':>8} {'cpu s':>6}  result")
        for label, seconds, cpu, note in rows:
            print(f"{label:<48} {seconds:>8.2f} {cpu:>6.2f}  {note}")
    print("target: one pass under 10 s on 2 cores")


def run_backend(
    backend: str, rules: Any, args: argparse.Namespace
) -> list[tuple[str, float, float, str]]:
    """The table's rows for one store: load it, then time a read, an evaluation, two passes."""
    with tempfile.TemporaryDirectory() as tmp, open_backend(backend, Path(tmp)) as (store, _):
        rows: list[tuple[str, float, float, str]] = []
        # VictoriaMetrics answers "the latest value" as of its own clock: its samples end at
        # this minute, so the read looks back over the rules' window and not months more
        now = NOW if backend == "duckdb" else int(time.time()) // 60 * 60

        def load() -> int:
            written = fill(store, args.vms, args.metrics, args.samples, now)
            if isinstance(store, VictoriaMetricsStore):
                store.flush()  # searchable before the clock starts
            return written

        timed("load the store (not part of a pass)", rows, load, lambda n: f"{n:,} samples")
        snap = timed(
            "read newest values",
            rows,
            lambda: read_snapshot(store, needs(rules), now),
            lambda s: f"{sum(len(v) for v in s.latest.values()):,} series",
        )
        timed(
            "evaluate rules",
            rows,
            lambda: evaluate(rules, snap),
            lambda c: f"{len(c):,} conditions",
        )
        db = Database(f"sqlite:///{Path(tmp) / 'corral.db'}")
        db.migrate()
        svc = AlertService(db, rules, clock=lambda: now)
        # the passes use a store object of their own, as the alert loop does: its first read
        # covers the whole look-back window, later ones (VictoriaMetrics) only what is new
        own = VictoriaMetricsStore(store.url) if isinstance(store, VictoriaMetricsStore) else store
        passes = (
            ("pass 1: read + evaluate + life cycle + store", now),
            ("pass 2 (alerts known)", now),
            ("pass 3 (a minute later, one new sample a series)", now + 60),
        )
        for label, at in passes:
            if at != now:  # untimed: the collector's next minute arrives
                fill(store, args.vms, args.metrics, 1, at, seed=8, silent_since=now - 3600)
                if isinstance(store, VictoriaMetricsStore):
                    store.flush()
            svc.clock = lambda at=at: at
            timed(
                label,
                rows,
                lambda at=at: svc.evaluate_store(own, at),
                lambda r: f"{r.changed:,} changed, {r.notifications:,} notifications",
            )
        if own is not store:
            own.close()
        db.dispose()
        return rows


if __name__ == "__main__":
    main()
