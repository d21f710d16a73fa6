"""The chunked analysis on a real Dask cluster (a scheduler and two worker processes) gives
exactly the single-process answer."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.engines.costing import load_cost_model
from corral.errors import ConfigError
from corral.metrics.store import DuckDBStore, MetricsStore
from corral.services import sprawl
from corral.services.distributed import AnalysisRun
from tests.scale.fleet import scenario, write_history

DAYS = 15
MODEL = load_cost_model()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _spawn(module: str, *args: str, log: Path) -> subprocess.Popen[bytes]:
    """A dask process of this interpreter, with the environment (PYTHONPATH) passed through."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", f"distributed.cli.{module}", *args],
            env=dict(os.environ),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[str]:
    """``dask scheduler`` and two ``dask worker`` processes on localhost; the address."""
    from distributed import Client

    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = [
        _spawn(
            "dask_scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-dashboard",
            log=tmp_path / "scheduler.log",
        )
    ]
    try:
        for name in ("w1", "w2"):
            procs.append(
                _spawn(
                    "dask_worker",
                    address,
                    "--name",
                    name,
                    "--nthreads",
                    "1",
                    "--no-nanny",
                    "--no-dashboard",
                    "--local-directory",
                    str(tmp_path / name),
                    log=tmp_path / f"{name}.log",
                )
            )
        deadline = time.monotonic() + 60
        while True:
            try:
                with Client(address, timeout="5s", set_as_default=False) as client:
                    client.wait_for_workers(2, timeout=60)
                break
            except (OSError, TimeoutError):
                if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                    logs = {p.name: p.read_text()[-800:] for p in tmp_path.glob("*.log")}
                    pytest.fail(f"the Dask cluster did not start: {logs}")
                time.sleep(0.5)
        yield address
    finally:
        for p in procs:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def _executed(address: str) -> dict[str, int]:
    """How many tasks each worker has run so far, by worker name."""
    from distributed import Client

    with Client(address, timeout="5s", set_as_default=False) as client:
        counts = client.run(lambda dask_worker: dask_worker.state.executed_count)
        names = {a: w["name"] for a, w in client.scheduler_info()["workers"].items()}
    return {names[a]: int(n) for a, n in counts.items()}


def test_two_workers_give_the_single_process_answer(cluster: str, store: MetricsStore) -> None:
    """Each worker reads its chunks from the store itself (a DuckDB file, VictoriaMetrics)."""
    fleet, batch = scenario(24, seed=11, days=DAYS)
    write_history(store, fleet, batch)
    here = sprawl.fleet_analysis(fleet, store, MODEL, days=DAYS, run=AnalysisRun(chunk_size=5))
    before = sum(_executed(cluster).values())
    run = AnalysisRun(chunk_size=5, scheduler=cluster)
    there = sprawl.fleet_analysis(fleet, store, MODEL, days=DAYS, run=run)
    assert there == here
    assert sum(_executed(cluster).values()) - before >= 5  # the five chunks ran on the workers
    assert here.findings and here.rightsizing


def test_a_store_without_url_is_read_here_and_shipped(cluster: str) -> None:
    store = DuckDBStore(":memory:")
    fleet, batch = scenario(12, seed=5, days=DAYS)
    write_history(store, fleet, batch)
    here = sprawl.fleet_analysis(fleet, store, MODEL, days=DAYS, run=AnalysisRun(chunk_size=4))
    run = AnalysisRun(chunk_size=4, scheduler=cluster)
    assert sprawl.fleet_analysis(fleet, store, MODEL, days=DAYS, run=run) == here
    assert any(f.category.value == "idle" for f in here.findings)


def test_a_reader_that_cannot_see_the_metrics_file_says_so(tmp_path: Path) -> None:
    from corral.errors import StoreError
    from corral.services.distributed import StoreReader

    fleet, _ = scenario(3, seed=1, days=DAYS)
    assert fleet.now is not None
    reader = StoreReader(f"duckdb://{tmp_path / 'elsewhere.duckdb'}", fleet.now, DAYS, 300)
    with pytest.raises(StoreError, match="not visible on this Dask worker"):
        reader.read(fleet.vms, fleet.hosts)
    assert not (tmp_path / "elsewhere.duckdb").exists()


def test_an_unreachable_scheduler_is_one_clear_sentence() -> None:
    fleet, _ = scenario(3, seed=1, days=DAYS)
    run = AnalysisRun(scheduler=f"tcp://127.0.0.1:{_free_port()}")
    with pytest.raises(ConfigError, match=r"unreachable.*unset analysis_scheduler"):
        sprawl.fleet_analysis(fleet, None, MODEL, days=DAYS, run=run)
