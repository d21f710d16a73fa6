"""Metrics benchmarks: ingest, 30-day backfill, one-VM query latency, fleet-wide p95.

    .venv/bin/python benchmarks/bench_metrics.py [--small] [--backends duckdb,victoriametrics]

Fixed seeded inputs; the Bitbrains traces come from the shared data folder
($CORRAL_SHARED_DATA or ../shared/data). Full scale: 10,000 VMs x 30 days x 4
metrics at 5 min (345.6 M samples); --small: 1,000 VMs (34.6 M).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np

from corral.metrics.model import EntityKind, SampleBatch, SeriesKey, Stat
from corral.metrics.replay import backfill
from corral.metrics.store import DuckDBStore, MetricsStore, VictoriaMetricsStore

DAY = 86400
METRICS = ["cpu_pct", "mem_used_pct", "disk_write_bytes_per_s", "net_tx_bytes_per_s"]
ROOT = Path(__file__).resolve().parents[1]


def shared_data() -> Path:
    env = os.environ.get("CORRAL_SHARED_DATA")
    return Path(env) if env else ROOT.parent / "shared" / "data"


def disk_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


@contextmanager
def victoria(workdir: Path) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            "/usr/bin/victoria-metrics",
            f"-storageDataPath={workdir}",
            f"-httpListenAddr=127.0.0.1:{port}",
            "-retentionPeriod=100y",
            "-search.latencyOffset=0s",
            "-search.maxSamplesPerQuery=2000000000",
            "-search.maxUniqueTimeseries=10000000",
            "-loggerLevel=ERROR",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=60)


@contextmanager
def open_backend(name: str, workdir: Path) -> Iterator[tuple[MetricsStore, Path]]:
    if name == "duckdb":
        path = workdir / "metrics.duckdb"
        store = DuckDBStore(path)
        try:
            yield store, path
        finally:
            store.close()
    else:
        with victoria(workdir / "vm") as url:
            vs = VictoriaMetricsStore(url, timeout_s=600)
            try:
                yield vs, workdir / "vm"
            finally:
                vs.close()


def synthetic_batch(n_vms: int, n_steps: int, t0: int, seed: int) -> SampleBatch:
    """``n_vms`` VMs x the 4 benchmark metrics x ``n_steps`` one-minute steps."""
    rng = np.random.default_rng(seed)
    keys = [SeriesKey(EntityKind.vm, f"vm-{i:06d}", m) for i in range(n_vms) for m in METRICS]
    n_series = len(keys)
    return SampleBatch(
        keys,
        [f"host-{i}" for i in range(100)],
        np.repeat(np.arange(n_series, dtype=np.int64), n_steps),
        np.repeat((np.arange(n_series, dtype=np.int64) // len(METRICS)) % 100, n_steps),
        np.tile(t0 + 60 * np.arange(n_steps, dtype=np.int64), n_series),
        rng.uniform(0, 100, n_series * n_steps).round(2),
    )


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def bench_ingest(store: MetricsStore, total: int) -> tuple[int, float]:
    """Batches of 1 M samples: 2,500 VMs x 4 metrics x 100 one-minute steps each."""
    t0 = int(time.time()) // DAY * DAY - 20 * DAY
    batches = [synthetic_batch(2_500, 100, t0 + i * 6000, i) for i in range(total // 1_000_000)]
    secs = sum(timed(lambda b=b: store.write(b)) for b in batches)
    return sum(len(b) for b in batches), secs


def fleet(n: int) -> list[tuple[str, str, int, int]]:
    return [(f"{i:08x}-0000-4000-8000-{i:012x}", f"host-{i % 500:03d}", 2, 4096) for i in range(n)]


class Rows(list[list[str]]):
    """Table rows, each also printed as soon as it is measured."""

    def append(self, row: list[str]) -> None:
        super().append(row)
        print("  ".join(row), flush=True)


def run_backend(name: str, args: argparse.Namespace, rows: list[list[str]]) -> None:
    n_vms = args.vms or (1000 if args.small else 10_000)
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        with open_backend(name, Path(tmp) / "ingest") as (store, _):
            n, secs = bench_ingest(store, 2_000_000 if args.small else 10_000_000)
        rows.append(
            [
                name,
                "ingest, batches of 1 M",
                f"{n:,} samples",
                f"{secs:.2f} s",
                f"{n / secs:,.0f} samples/s",
            ]
        )
        with open_backend(name, Path(tmp) / "backfill") as (store, path):
            run_history(name, store, path, n_vms, args, rows)


def run_history(
    name: str,
    store: MetricsStore,
    path: Path,
    n_vms: int,
    args: argparse.Namespace,
    rows: list[list[str]],
) -> None:
    vms = fleet(n_vms)
    end = int(time.time()) // DAY * DAY
    traces = shared_data() / "bitbrains-rnd"
    t = time.perf_counter()
    n = backfill(store, vms, traces, days=30, end=end, seed=1, metrics=METRICS, rollup=False)
    secs = time.perf_counter() - t
    if isinstance(store, VictoriaMetricsStore):
        store.flush()
    rows.append(
        [
            name,
            f"backfill {n_vms:,} VMs x 30 d x 4 metrics",
            f"{n:,} samples",
            f"{secs:.1f} s",
            f"{n / secs:,.0f} samples/s",
        ]
    )
    if not args.skip_rollup:
        secs = timed(lambda: store.rollup(end))
        levels = "1h/1d (5m read from raw)" if name == "victoriametrics" else "5m/1h/1d"
        rows.append([name, f"rollup {levels} of the backfill", "", f"{secs:.1f} s", ""])
    if isinstance(store, VictoriaMetricsStore):
        store.flush()
        time.sleep(2)
    rows.append([name, "disk after backfill", "", "", f"{disk_bytes(path) / 2**20:,.0f} MiB"])
    rng = np.random.default_rng(5)
    lat = []
    for i in rng.integers(0, n_vms, 200).tolist():
        t = time.perf_counter()
        pts = store.series(EntityKind.vm, vms[i][0], "cpu_pct", end - 30 * DAY, end, 3600)
        lat.append(time.perf_counter() - t)
        assert len(pts) == 720, len(pts)
    ms = np.array(lat) * 1000
    rows.append(
        [
            name,
            "one VM, 30 d at 1 h step (200 queries)",
            f"p50 {np.median(ms):.1f} ms",
            f"p99 {np.quantile(ms, 0.99):.1f} ms",
            "target < 50 ms",
        ]
    )
    t = time.perf_counter()
    p95 = store.per_entity(EntityKind.vm, "cpu_pct", end - 30 * DAY, end, Stat.p95)
    secs = time.perf_counter() - t
    assert len(p95) == n_vms, len(p95)
    rows.append(
        [
            name,
            f"fleet 30-d p95 per VM ({n_vms:,} VMs)",
            f"{len(p95):,} values",
            f"{secs:.2f} s",
            "target < 10 s",
        ]
    )


def print_table(rows: list[list[str]]) -> None:
    head = ["backend", "case", "size", "time", "result"]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    line = " | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))
    print(line)
    print("-" * len(line))
    for r in rows:
        print(" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--small", action="store_true", help="1,000 VMs instead of 10,000")
    ap.add_argument("--backends", default="duckdb,victoriametrics")
    ap.add_argument("--workdir", default=None, help="where temporary stores go (default /tmp)")
    ap.add_argument("--skip-rollup", action="store_true")
    ap.add_argument("--vms", type=int, default=None, help="override the number of VMs")
    args = ap.parse_args()
    if "victoriametrics" in args.backends and not shutil.which("victoria-metrics"):
        raise SystemExit("victoria-metrics not installed (Debian package victoria-metrics)")
    rows = Rows()
    for name in args.backends.split(","):
        run_backend(name, args, rows)
    print()
    print_table(rows)
    print(
        f"scale: {'--small (1,000 VMs)' if args.small else 'full (10,000 VMs)'}, "
        f"cores: {os.cpu_count()}"
    )


if __name__ == "__main__":
    main()
