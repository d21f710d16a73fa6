"""``corral metrics backfill`` run twice, and killed with SIGKILL then run again, leaves exactly
what one clean run leaves: the same samples, one per (series, time), and the same rollups.

Every run is the real command in a subprocess, on DuckDB and on a real VictoriaMetrics
server (with and without the server's own deduplication).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest

from corral.metrics.model import EntityKind
from corral.metrics.store import ROLLUP_RESOLUTIONS, VictoriaMetricsStore

from .conftest import start_victoria, stop_victoria

CORRAL = [sys.executable, "-m", "corral"]
DAY = 86400
# Recent whole days: VictoriaMetrics refuses samples outside its retention window.
END = int(time.time()) // DAY * DAY - DAY
DAYS = 3
VMS = [f"00000000-0000-0000-0000-0000000000{i:02d}" for i in range(8)]
VM_ARGS = [a for i, u in enumerate(VMS) for a in ("--vm", f"{u}:host-{i % 2}:2:2048")]

Snapshot = dict[str, Any]


@pytest.fixture
def traces(shared_data: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "traces"
    folder.mkdir()
    for n in (5, 6, 7):
        shutil.copy(shared_data / "bitbrains-rnd" / "rnd" / "2013-7" / f"{n}.csv.gz", folder)
    return folder


def backfill_cmd(traces: Path, url: str) -> list[str]:
    return [
        *CORRAL,
        "metrics",
        "backfill",
        "--trace-dir",
        str(traces),
        "--days",
        str(DAYS),
        "--end",
        str(END),
        "--seed",
        "3",
        *VM_ARGS,
        "--store",
        url,
    ]


def env(home: Path) -> dict[str, str]:
    out = {**os.environ, "CORRAL_HOME": str(home)}
    out.pop("CORRAL_METRICS_URL", None)
    return out


def run_backfill(traces: Path, url: str, home: Path) -> None:
    proc = subprocess.run(
        backfill_cmd(traces, url), env=env(home), capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert "rolled up" in proc.stderr


def kill_backfill(traces: Path, url: str, home: Path, after: str, delay: float) -> bool:
    """Start a backfill, SIGKILL it ``delay`` s after it reports ``after``; False if it ended."""
    proc = subprocess.Popen(
        backfill_cmd(traces, url),
        env=env(home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith(after):
            break
    time.sleep(delay)
    ended = proc.poll() is not None
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stderr.close()
    return not ended


# -- what a store holds ------------------------------------------------------------
def duckdb_snapshot(path: Path) -> Snapshot:
    """Every sample and rollup row by name, plus the count of (series, time) pairs."""
    db = duckdb.connect(str(path), read_only=True)
    try:
        samples = db.execute(
            """SELECT s.entity, s.metric, ts, round(value, 9) FROM samples
            JOIN series s ON s.id = samples.sid ORDER BY ALL"""
        ).fetchall()
        pairs = db.execute("SELECT count(DISTINCT (sid, ts)) FROM samples").fetchone()
        snap: Snapshot = {"samples": samples, "pairs": pairs[0] if pairs else 0}
        for r in ROLLUP_RESOLUTIONS:
            snap[f"rollup_{r}"] = db.execute(
                f"""SELECT s.entity, s.metric, ts, n, round(vmin, 9), round(vavg, 9),
                round(vmax, 9), round(vp95, 9) FROM rollup_{r} JOIN series s ON s.id = sid
                ORDER BY ALL"""
            ).fetchall()
    finally:
        db.close()
    return snap


def victoria_snapshot(url: str) -> Snapshot:
    """Every raw sample the server exports (copies included) and every rollup Corral reads."""
    httpx.get(f"{url}/internal/force_flush").raise_for_status()
    text = httpx.get(
        f"{url}/api/v1/export", params={"match[]": '{__name__=~"corral_.+"}'}, timeout=60
    ).text
    samples = sorted(
        (row["metric"]["id"], row["metric"]["__name__"], t, round(v, 9))
        for line in text.splitlines()
        if line.strip()
        for row in [json.loads(line)]
        for t, v in zip(row["timestamps"], row["values"], strict=True)
    )
    store = VictoriaMetricsStore(url)
    snap: Snapshot = {"samples": samples, "pairs": len({s[:3] for s in samples})}
    try:
        metrics = sorted({m for _, m, _, _ in samples})
        for r in ROLLUP_RESOLUTIONS:
            snap[f"rollup_{r}"] = [
                (
                    u,
                    m,
                    row.ts,
                    row.count,
                    *(round(x, 9) for x in (row.min, row.avg, row.max, row.p95)),
                )
                for u in VMS
                for m in metrics
                for row in store.rollup_rows(
                    r, EntityKind.vm, u, m.removeprefix("corral_"), 0, END + DAY
                )
            ]
    finally:
        store.close()
    return snap


def assert_same(got: Snapshot, want: Snapshot) -> None:
    assert len(got["samples"]) == len(want["samples"]), "sample count"
    assert got["pairs"] == len(got["samples"]), "duplicate (series, time) samples"
    assert got["samples"] == want["samples"]
    for r in ROLLUP_RESOLUTIONS:
        assert got[f"rollup_{r}"] == want[f"rollup_{r}"], f"rollup {r}"


# -- the stores under test ---------------------------------------------------------
class Backend:
    """A fresh store per call of ``new``, its URL for --store, and how to read it back."""

    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.kind, self.tmp, self.n = kind, tmp_path, 0
        self.procs: list[subprocess.Popen[bytes]] = []

    def new(self) -> tuple[str, Callable[[], Snapshot]]:
        self.n += 1
        if self.kind == "duckdb":
            path = self.tmp / f"m{self.n}.duckdb"
            return f"duckdb://{path}", lambda: duckdb_snapshot(path)
        flags = ["-dedup.minScrapeInterval=1ms"] if self.kind == "vm-dedup" else []
        proc, url = start_victoria(self.tmp / f"vm{self.n}", *flags)
        self.procs.append(proc)
        return f"victoriametrics://{url.removeprefix('http://')}", lambda: victoria_snapshot(url)

    def close(self) -> None:
        for p in self.procs:
            stop_victoria(p)


def _backend(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    b = Backend(request.param, tmp_path)
    try:
        yield b
    finally:
        b.close()


#: Every store: DuckDB, VictoriaMetrics as the tests elsewhere start it (keeping every copy
#: of a sample) and with the server's deduplication on.
backend = pytest.fixture(params=["duckdb", "victoriametrics", "vm-dedup"])(_backend)
#: Killed runs: on a server keeping copies, a kill while an import is answered can leave one
#: batch twice (seen 2 times in 8 sequences; reads of raw samples and rollups drop the copy);
#: deduplication on the server (as the README advises) makes the result exact.
killable = pytest.fixture(params=["duckdb", "vm-dedup"])(_backend)


# -- the tests ---------------------------------------------------------------------
def test_second_backfill_changes_nothing(backend: Backend, traces: Path, tmp_path: Path) -> None:
    url, snapshot = backend.new()
    run_backfill(traces, url, tmp_path)
    once = snapshot()
    assert len(once["samples"]) == len(VMS) * 6 * DAYS * 288  # 6 Bitbrains metrics, 5 min
    assert once["pairs"] == len(once["samples"])
    run_backfill(traces, url, tmp_path)
    assert_same(snapshot(), once)


def test_killed_backfills_then_one_run_equal_a_clean_run(
    killable: Backend, traces: Path, tmp_path: Path
) -> None:
    backend = killable
    clean_url, clean_snapshot = backend.new()
    run_backfill(traces, clean_url, tmp_path)
    clean = clean_snapshot()

    url, snapshot = backend.new()
    rng = random.Random(20261203)
    kills = [
        ("wrote cpu_pct", rng.uniform(0, 0.3)),  # while writing samples
        ("wrote", rng.uniform(0, 0.2)),
        ("rolling up", 0.0),  # during the rollup
        ("rolling up", rng.uniform(0, 0.1)),
        ("rolling up", rng.uniform(0, 0.3)),
    ]
    landed = [kill_backfill(traces, url, tmp_path, after, delay) for after, delay in kills]
    assert any(landed), "no kill landed before the backfill ended"
    half = snapshot()
    assert half["pairs"] == len(half["samples"]), "duplicates after killed runs"
    run_backfill(traces, url, tmp_path)
    assert_same(snapshot(), clean)
