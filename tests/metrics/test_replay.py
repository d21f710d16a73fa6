"""Trace replay: both public formats, a malformed file, and the live present after a backfill."""

from __future__ import annotations

import gzip
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from corral.errors import ValidationError
from corral.metrics.clock import ManualClock
from corral.metrics.collector import Collector
from corral.metrics.model import EntityKind
from corral.metrics.replay import TraceReplaySource, assign, backfill
from corral.metrics.store import DuckDBStore, MetricsStore
from corral.metrics.traces import read_bitbrains_file, read_planetlab_file

VM = EntityKind.vm
END = 1_700_006_400  # a multiple of 300 s
FLEET = [(f"00000000-0000-0000-0000-{i:012d}", f"host-{i % 2}", 2, 4096) for i in range(6)]


@pytest.fixture
def planetlab_day(shared_data: Path, tmp_path: Path) -> Path:
    """Five PlanetLab files of one day, copied so a test may break one."""
    src = sorted((shared_data / "planetlab" / "20110303").iterdir())[:5]
    day = tmp_path / "planetlab" / "20110303"
    day.mkdir(parents=True)
    for f in src:
        shutil.copy(f, day / f.name)
    return tmp_path / "planetlab"


@pytest.fixture
def bitbrains_few(shared_data: Path, tmp_path: Path) -> Path:
    month = tmp_path / "rnd" / "2013-7"
    month.mkdir(parents=True)
    for n in (101, 102, 103):
        shutil.copy(shared_data / "bitbrains-rnd" / "rnd" / "2013-7" / f"{n}.csv.gz", month)
    return tmp_path / "rnd"


def count(store: MetricsStore, metric: str = "cpu_pct") -> int:
    return sum(len(store.raw(VM, u, metric, 0, END * 2)) for u, *_ in FLEET)


def test_planetlab_backfill_replays_the_files_exactly(planetlab_day: Path, tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "m.duckdb")
    n = backfill(store, FLEET, planetlab_day, days=1, end=END, seed=4)
    assert n == len(FLEET) * 288
    a = next(x for x in assign(FLEET, planetlab_day, seed=4) if x.uuid == FLEET[3][0])
    raw = store.raw(VM, a.uuid, "cpu_pct", END - 86400, END)
    assert [h for _, h, _ in raw] == [a.host] * 288
    file_values = read_planetlab_file(planetlab_day / "20110303" / a.trace.name)
    steps = np.arange(END // 300 - 288, END // 300)
    want = file_values[(steps + a.offset) % 288]
    assert [v for _, _, v in raw] == want.tolist()


def test_same_seed_same_history_other_seed_other(planetlab_day: Path) -> None:
    one = [(a.uuid, a.trace.name, a.offset) for a in assign(FLEET, planetlab_day, seed=1)]
    again = [
        (a.uuid, a.trace.name, a.offset)
        for a in assign(list(reversed(FLEET)), planetlab_day, seed=1)
    ]
    other = [(a.uuid, a.trace.name, a.offset) for a in assign(FLEET, planetlab_day, seed=2)]
    assert one == again
    assert one != other


def test_bitbrains_backfill_gives_cpu_memory_disk_network(
    bitbrains_few: Path, tmp_path: Path
) -> None:
    store = DuckDBStore(tmp_path / "m.duckdb")
    n = backfill(store, FLEET, bitbrains_few, days=2, end=END, seed=0)
    assert n == len(FLEET) * 576 * 6
    a = assign(FLEET, bitbrains_few, seed=0)[0]
    rows = read_bitbrains_file(bitbrains_few / "2013-7" / f"{a.trace.name}.csv.gz")
    cpu = store.raw(VM, a.uuid, "cpu_pct", 0, END)
    assert min(v for *_, v in cpu) >= 0 and max(v for *_, v in cpu) <= 100
    assert max(v for *_, v in cpu) <= rows[:, 4].max() + 1e-9
    net = store.raw(VM, a.uuid, "net_tx_bytes_per_s", 0, END)
    assert max(v for *_, v in net) <= rows[:, 10].max() * 1024 + 1e-6
    p = store.per_entity(VM, "mem_used_pct", END - 86400, END)
    assert set(p) == {u for u, *_ in FLEET}


def test_malformed_planetlab_file_ingests_nothing(planetlab_day: Path, tmp_path: Path) -> None:
    victim = sorted((planetlab_day / "20110303").iterdir())[2]
    lines = victim.read_text().splitlines()
    lines[40] = "12,5"
    victim.write_text("\n".join(lines) + "\n")
    store = DuckDBStore(tmp_path / "m.duckdb")
    with pytest.raises(ValidationError, match=r"line 41: '12,5' is not an integer"):
        backfill(store, FLEET, planetlab_day, days=1, end=END)
    assert count(store) == 0


def test_malformed_bitbrains_file_ingests_nothing(bitbrains_few: Path, tmp_path: Path) -> None:
    victim = bitbrains_few / "2013-7" / "103.csv.gz"
    lines = gzip.decompress(victim.read_bytes()).decode().splitlines()
    lines[7] = lines[7].rsplit(";", 2)[0]  # two fields short
    victim.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    store = DuckDBStore(tmp_path / "m.duckdb")
    with pytest.raises(ValidationError, match=r"103\.csv\.gz, line 8: expected 11 fields"):
        backfill(store, FLEET, bitbrains_few, days=1, end=END)
    assert count(store) == 0


def test_live_replay_continues_the_backfill(bitbrains_few: Path, tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "m.duckdb")
    backfill(store, FLEET, bitbrains_few, days=1, end=END, seed=9)
    clock = ManualClock(start=END)
    source = TraceReplaySource(assign(FLEET, bitbrains_few, seed=9), clock=clock)
    col = Collector(source, store.write, interval_s=300, clock=clock)
    col.run(threading.Event(), cycles=4)
    col.close()
    a = assign(FLEET, bitbrains_few, seed=9)[1]
    live = store.raw(VM, a.uuid, "cpu_pct", END, END + 3600)
    assert [t for t, _, _ in live] == [END + 300, END + 600, END + 900]
    want = a.window("cpu_pct", END // 300, 3) * 1.0
    assert [v for *_, v in live] == pytest.approx(want.tolist(), rel=1e-6, abs=1e-6)
    assert store.raw(EntityKind.host, a.host, "host_cpu_pct", END, END + 3600)
