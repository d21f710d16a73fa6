"""The embedded DuckDB file serves several processes: while ``corral serve`` answers and a
collector writes every second, every reading command works (real processes throughout)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .conftest import _free_port

CORRAL = [sys.executable, "-m", "corral"]
NODE = Path(__file__).parent / "data" / "node-two-vms.xml"
WEB1 = "11111111-2222-3333-4444-000000000001"


def _env(home: Path) -> dict[str, str]:
    keep = ("CORRAL_SHARED_DATA", "CORRAL_SECRET_KEY")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORRAL_") or k in keep}
    return {**env, "CORRAL_HOME": str(home), "CORRAL_NODE_DIR": str(NODE.parent)}


def corral(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [*CORRAL, *args], env=_env(home), capture_output=True, text=True, timeout=180
    )
    assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
    return proc


@pytest.fixture
def home(tmp_path: Path, shared_data: Path) -> Path:
    """A home with one test-driver host, synced, and two days of trace history."""
    home = tmp_path / "home"
    traces = tmp_path / "traces"
    traces.mkdir()
    for n in (5, 6):
        shutil.copy(shared_data / "bitbrains-rnd" / "rnd" / "2013-7" / f"{n}.csv.gz", traces)
    corral(home, "hosts", "add", "h1", f"test://{NODE}")
    corral(home, "sync")
    corral(home, "metrics", "backfill", "--trace-dir", str(traces), "--days", "2")
    return home


@pytest.fixture
def running(home: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``corral serve`` and ``corral metrics collect --interval 1s``, each its own process."""
    port = _free_port()
    server = subprocess.Popen(
        [*CORRAL, "serve", "--port", str(port)],
        env=_env(home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    collector = subprocess.Popen(
        [*CORRAL, "metrics", "collect", "--interval", "1s"],
        env=_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            assert time.monotonic() < deadline, "corral serve did not answer within 60 s"
            time.sleep(0.2)
        yield url, collector
    finally:
        for p in (server, collector):
            p.terminate()
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def collected(home: Path) -> int:
    """How many collect_up samples the collector has stored in the last ten minutes."""
    out = corral(
        home, "metrics", "export", "h1", "--kind", "collector", "--metric", "collect_up",
        "--start", "-10m", "-o", "json",
    )  # fmt: skip
    return len(json.loads(out.stdout))


def test_every_command_works_while_the_server_and_collector_run(
    home: Path, running: tuple[str, subprocess.Popen[str]]
) -> None:
    url, collector = running
    token = corral(home, "token", "create", "shared-file").stdout.strip().splitlines()[-1]
    auth = {"Authorization": f"Bearer {token}"}  # every read but /healthz needs a token
    api = httpx.get(
        f"{url}/api/v1/metrics/top", params={"metric": "cpu_pct", "start": "-3d"}, headers=auth
    )
    assert api.status_code == 200, api.text
    assert {r["id"] for r in api.json()} >= {WEB1}
    first = collected(home)
    for _ in range(2):
        out = corral(home, "metrics", "top", "cpu_pct", "--start", "-3d", "-o", "json")
        top = json.loads(out.stdout)
        assert {r["id"] for r in top} >= {WEB1} and all(r["cpu_pct"] >= 0 for r in top)
        chart = corral(home, "metrics", "chart", WEB1, "cpu_pct", "--start", "-2d", "--step", "1h")
        assert "cpu_pct" in chart.stdout and "min " in chart.stdout
        report = json.loads(corral(home, "sprawl", "report", "-o", "json").stdout)
        assert report["summary"]["vms"] >= 2
        flagged = corral(home, "reclaim", "flag-findings", "--dry-run")
        assert flagged.stdout.strip()
        again = httpx.get(f"{url}/api/v1/metrics/top", params={"metric": "cpu_pct"}, headers=auth)
        assert again.is_success
    time.sleep(2)
    later = collected(home)
    assert later > first > 0, (first, later)
    assert collector.poll() is None, collector.stderr.read() if collector.stderr else ""
