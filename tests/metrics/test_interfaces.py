"""CLI, REST and Prometheus exposition over a real store filled by replaying a real trace."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from corral.api.deps import current_principal
from corral.api.routes.metrics import get_metrics_store, router
from corral.cli.main import app as cli_app
from corral.domain.access import Principal, Role
from corral.metrics.model import EntityKind, Sample, SampleBatch
from corral.metrics.replay import backfill
from corral.metrics.store import DuckDBStore
from tests.requires import PROMTOOL, Resource, requires

UUIDS = [f"00000000-0000-0000-0000-00000000000{i}" for i in range(1, 4)]
FLEET = [(u, f"host-{i % 2}", 2, 2048) for i, u in enumerate(UUIDS)]


@pytest.fixture
def filled(shared_data: Path, tmp_path: Path) -> Path:
    """A DuckDB file with one day of Bitbrains history and a fresh collector reading."""
    path = tmp_path / "m.duckdb"
    store = DuckDBStore(path)
    rnd = shared_data / "bitbrains-rnd" / "rnd" / "2013-7"
    traces = tmp_path / "traces"
    traces.mkdir()
    for n in (5, 6):
        shutil.copy(rnd / f"{n}.csv.gz", traces)
    now = int(time.time())
    backfill(store, FLEET, traces, days=1, end=now, seed=2)
    c = EntityKind.collector
    store.write(
        SampleBatch.from_samples(
            [
                Sample(c, "host-0", "host-0", "collect_up", now - 5, 1.0),
                Sample(c, "host-0", "host-0", "collect_lag_seconds", now - 5, 0.25),
                Sample(c, "host-1", "host-1", "collect_up", now - 5, 0.0),
                Sample(c, "host-1", "host-1", "collect_errors_total", now - 5, 3.0),
                Sample(EntityKind.host, "host-0", "host-0", "host_cpu_pct", now - 5, 42.0),
            ]
        )
    )
    store.close()
    return path


@pytest.fixture
def client(filled: Path) -> Iterator[TestClient]:
    store = DuckDBStore(filled)
    api = FastAPI()
    api.include_router(router)
    api.dependency_overrides[get_metrics_store] = lambda: store
    # The router alone, without the app's token store: the caller is an operator.
    api.dependency_overrides[current_principal] = lambda: Principal(
        "metrics-tests", frozenset({Role.operator}), frozenset()
    )
    with TestClient(api) as c:
        yield c
    store.close()


def test_rest_series_json_and_csv(client: TestClient) -> None:
    params = {"id": UUIDS[0], "metric": "cpu_pct", "start": "-12h", "step": "1h"}
    body = client.get("/api/v1/metrics/series", params=params).json()
    assert body["step"] == 3600 and body["metric"] == "cpu_pct"
    assert 11 <= len(body["points"]) <= 13
    assert all(0 <= p["value"] <= 100 for p in body["points"])
    csv_text = client.get("/api/v1/metrics/series", params={**params, "format": "csv"}).text
    lines = csv_text.strip().splitlines()
    assert lines[0] == "time,ts,value" and len(lines) == len(body["points"]) + 1


def test_rest_top_ranks_and_latest_has_hosts(client: TestClient) -> None:
    top = client.get("/api/v1/metrics/top", params={"metric": "net_tx_bytes_per_s", "n": 2}).json()
    assert len(top) == 2 and top[0]["value"] >= top[1]["value"]
    latest = client.get("/api/v1/metrics/latest", params={"kind": "vm"}).json()["items"]
    assert {x["id"] for x in latest} == set(UUIDS)
    assert {x["host"] for x in latest if x["id"] == UUIDS[1]} == {"host-1"}


def test_prometheus_exposition_passes_promtool(client: TestClient) -> None:
    resp = client.get("/metrics")
    assert resp.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = resp.text
    assert f'corral_vm_cpu_ratio{{vm="{UUIDS[0]}",host="host-0"}}' in text
    assert 'corral_host_cpu_ratio{host="host-0"} 0.42' in text
    assert 'corral_collect_errors_total{host="host-1"} 3.0' in text
    assert 'corral_collect_up{host="host-1"} 0.0' in text
    assert 'corral_collect_age_seconds{host="host-0"}' in text
    requires(Resource.promtool)
    check = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_cli_series_top_chart_export(filled: Path) -> None:
    url = f"duckdb://{filled}"
    run = CliRunner().invoke
    r = run(
        cli_app,
        [
            "metrics",
            "series",
            UUIDS[2],
            "cpu_pct",
            "--start",
            "-3h",
            "--step",
            "1h",
            "-o",
            "json",
            "--store",
            url,
        ],
    )
    assert r.exit_code == 0, r.output
    assert '"value"' in r.output
    r = run(cli_app, ["metrics", "top", "cpu_pct", "-n", "2", "-o", "csv", "--store", url])
    assert r.exit_code == 0 and r.output.splitlines()[0] == "rank,id,name,cpu_pct"
    assert len(r.output.splitlines()) == 3
    r = run(
        cli_app,
        ["metrics", "chart", UUIDS[0], "cpu_pct", "--start", "-1d", "--step", "1h", "--store", url],
    )
    assert r.exit_code == 0 and any(ch in r.output for ch in "▁▂▃▄▅▆▇█")
    r = run(
        cli_app,
        ["metrics", "export", UUIDS[0], "--metric", "cpu_pct", "--start", "-1h", "--store", url],
    )
    assert r.exit_code == 0
    lines = r.output.strip().splitlines()
    assert lines[0] == "time,ts,host,metric,value" and 11 <= len(lines) - 1 <= 12


def test_cli_collect_from_test_driver(tmp_path: Path) -> None:
    url = f"duckdb://{tmp_path / 'c.duckdb'}"
    r = CliRunner().invoke(
        cli_app,
        [
            "metrics",
            "collect",
            "--host",
            "a=test:///default",
            "--interval",
            "1s",
            "--cycles",
            "2",
            "--store",
            url,
        ],
    )
    assert r.exit_code == 0, r.output
    assert r.output.count("samples") == 2
    store = DuckDBStore(tmp_path / "c.duckdb")
    assert store.raw(EntityKind.vm, "6695eb01-f6a4-8304-79aa-97f2502e193f", "cpu_pct", 0, 2**40)
    store.close()
