"""A rollup killed with SIGKILL leaves every bucket as it was or as it will be, never missing,
and the next run finishes it: ``corral metrics maintain`` in a real process, on DuckDB."""

from __future__ import annotations

import os
import pathlib
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import numpy as np

from corral.metrics.model import EntityKind, SampleBatch, SeriesKey
from corral.metrics.store import ROLLUP_RESOLUTIONS, DuckDBStore

DAY = 86400
N_SERIES, DAYS = 100, 30
NOW = int(time.time())
T0 = NOW // DAY * DAY - DAYS * DAY


def fill(store: DuckDBStore, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_t = DAYS * 288
    keys = [SeriesKey(EntityKind.vm, f"vm-{i:03d}", "cpu_pct") for i in range(N_SERIES)]
    store.write(
        SampleBatch(
            keys,
            ["h1"],
            np.repeat(np.arange(N_SERIES), n_t),
            np.zeros(N_SERIES * n_t, dtype=np.int64),
            np.tile(T0 + 300 * np.arange(n_t), N_SERIES),
            rng.uniform(0, 100, N_SERIES * n_t),
        )
    )


def compare(now: Path, old: Path, new: Path) -> dict[str, int]:
    """Buckets of ``now`` counted: as in ``old``, as in ``new``, neither, missing, doubled."""
    same = "{a}.n = {b}.n AND abs({a}.vavg - {b}.vavg) < 1e-9 AND abs({a}.vp95 - {b}.vp95) < 1e-9"
    db = duckdb.connect()
    out = dict.fromkeys(("rows", "as_old", "as_new", "neither", "missing", "doubled"), 0)
    try:
        for alias, path in (("c", now), ("o", old), ("n", new)):
            db.execute(f"ATTACH '{path}' AS {alias} (READ_ONLY)")
        for r in ROLLUP_RESOLUTIONS:
            row = db.execute(
                f"""SELECT count(*), count(*) FILTER ({same.format(a="y", b="a")}),
                  count(*) FILTER ({same.format(a="y", b="b")}),
                  count(*) FILTER (NOT coalesce({same.format(a="y", b="a")}, false)
                                   AND NOT coalesce({same.format(a="y", b="b")}, false)),
                  count(*) - count(DISTINCT (y.sid, y.ts))
                FROM c.rollup_{r} y LEFT JOIN o.rollup_{r} a USING (sid, ts)
                  LEFT JOIN n.rollup_{r} b USING (sid, ts)"""
            ).fetchone()
            missing = db.execute(
                f"SELECT count(*) FROM n.rollup_{r} b ANTI JOIN c.rollup_{r} y USING (sid, ts)"
            ).fetchone()
            assert row is not None and missing is not None
            for key, value in zip(out, (*row[:4], missing[0], row[4]), strict=True):
                out[key] += int(value)
    finally:
        db.close()
    return out


def maintain(path: Path, home: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CORRAL_HOME": str(home)}
    return subprocess.Popen(
        [sys.executable, "-m", "corral", "metrics", "maintain", "--store", f"duckdb://{path}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_killed_rollup_keeps_old_or_new_buckets_and_next_run_finishes(tmp_path: Path) -> None:
    path = tmp_path / "m.duckdb"
    store = DuckDBStore(path)
    fill(store, seed=1)
    store.rollup(NOW)
    fill(store, seed=2)  # every value rewritten: the whole history is to be rolled up again
    store.close()
    old = tmp_path / "old.duckdb"
    shutil.copy(path, old)
    new = tmp_path / "new.duckdb"
    shutil.copy(path, new)
    clean = DuckDBStore(new)
    clean.rollup(NOW)
    clean.close()
    total = compare(new, new, new)["rows"]
    assert compare(old, old, new)["as_new"] < total  # the values did change

    # The kill moment is searched for, not guessed: a kill after the rollup finished starts
    # again from the old file and kills sooner; one before it started kills later.
    rng = random.Random(7)
    lo, hi = 0.2, 8.0
    mixed = 0
    for _ in range(10):
        wait = rng.uniform(lo, hi)
        proc = maintain(path, tmp_path)
        time.sleep(wait)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        got = compare(path, old, new)
        assert got["missing"] == 0 and got["doubled"] == 0, got
        assert got["neither"] == 0, got  # every bucket as it was, or as it will be
        if 0 < got["as_new"] < total:
            mixed += 1
            if mixed >= 2:
                break
        elif got["as_new"] == total:
            hi = max(lo, wait * 0.7)
            pathlib.Path(f"{path}.wal").unlink(missing_ok=True)
            shutil.copy(old, path)  # finished: take the old file again
        else:
            lo = min(hi, wait * 1.3)
    assert mixed, "no kill landed while the rollup was under way"
    done = maintain(path, tmp_path)
    assert done.wait(timeout=300) == 0
    assert compare(path, old, new)["as_new"] == total
