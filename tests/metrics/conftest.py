"""Fixtures for metrics tests: every store backend, real processes only."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from corral.metrics.store import DuckDBStore, MetricsStore, VictoriaMetricsStore
from tests.requires import VICTORIA_METRICS, Resource, requires

VM_BINARY = VICTORIA_METRICS


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_victoria(folder: Path, *flags: str) -> tuple[subprocess.Popen[bytes], str]:
    """A real victoria-metrics process on a free port storing in ``folder``; and its URL."""
    requires(Resource.victoriametrics)
    port = _free_port()
    proc = subprocess.Popen(
        [
            VM_BINARY,
            f"-storageDataPath={folder}",
            f"-httpListenAddr=127.0.0.1:{port}",
            "-retentionPeriod=100y",
            "-search.latencyOffset=0s",
            "-search.disableCache",
            "-loggerLevel=ERROR",
            *flags,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            stop_victoria(proc)
            pytest.fail("victoria-metrics did not start within 15 s")
        time.sleep(0.05)


def stop_victoria(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture
def victoria_url(tmp_path: Path) -> Iterator[str]:
    """A real victoria-metrics process on a free port with its own storage folder."""
    proc, url = start_victoria(tmp_path / "vm")
    try:
        yield url
    finally:
        stop_victoria(proc)


class Flushing(VictoriaMetricsStore):
    """The VictoriaMetrics store, made read-after-write for tests by flushing after writes."""

    def write(self, batch):  # type: ignore[no-untyped-def]
        n = super().write(batch)
        self.flush()
        return n


@pytest.fixture(params=["duckdb", "victoriametrics"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MetricsStore]:
    """Every backend, each fresh: the same test runs against all of them."""
    s: MetricsStore
    if request.param == "duckdb":
        s = DuckDBStore(tmp_path / "m.duckdb")
    else:
        s = Flushing(request.getfixturevalue("victoria_url"))
    try:
        yield s
    finally:
        s.close()
