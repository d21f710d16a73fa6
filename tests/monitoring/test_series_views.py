"""``corral metrics baseline|forecast VM METRIC`` and /api/v1/metrics/baseline|forecast on a
real DuckDB store filled by replaying a real Bitbrains trace: the CLI, REST and the service
give the same typed answers, and the baseline's bands are those of the stored buckets."""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from corral.api.app import create_app
from corral.cli.main import app as cli_app
from corral.config import Settings
from corral.engines.baseline import BaselineState
from corral.engines.baseline.hour_of_week import hour_of_week
from corral.errors import ValidationError
from corral.inventory.service import Inventory
from corral.metrics.model import EntityKind
from corral.metrics.replay import backfill
from corral.metrics.store import DuckDBStore
from corral.security.token_store import TokenStore
from corral.services import series_insights

UUID = "00000000-0000-0000-0000-0000000000b1"
SHORT = "00000000-0000-0000-0000-0000000000b2"


@pytest.fixture
def filled(shared_data: Path, tmp_path: Path) -> Path:
    """Ten days of one VM's history (ready) and three of another's (still learning), ending
    an hour ago, so every answer below is the same whenever it is asked."""
    path = tmp_path / "m.duckdb"
    traces = tmp_path / "traces"
    traces.mkdir()
    shutil.copy(shared_data / "bitbrains-rnd" / "rnd" / "2013-7" / "5.csv.gz", traces)
    end = int(time.time()) - 3600
    store = DuckDBStore(path)
    backfill(store, [(UUID, "host-0", 2, 2048)], traces, days=10, end=end, seed=3)
    backfill(store, [(SHORT, "host-0", 2, 2048)], traces, days=3, end=end, seed=4)
    store.close()
    return path


@pytest.fixture
def store(filled: Path) -> Iterator[DuckDBStore]:
    s = DuckDBStore(filled)
    yield s
    s.close()


def test_the_baseline_is_learned_from_the_stored_buckets(store: DuckDBStore) -> None:
    now = int(time.time())
    view = series_insights.baseline(store, EntityKind.vm, UUID, "cpu_pct", now)
    assert view.state is BaselineState.ready and len(view.hours) == 168
    assert view.history_days >= 9.9 and view.needs_days == 7.0
    points = store.series(EntityKind.vm, UUID, "cpu_pct", now - 28 * 86400, now, 300)
    stored = [(p.ts, p.value) for p in points if p.value is not None and math.isfinite(p.value)]
    h = hour_of_week(now)
    mine = [v for ts, v in stored if hour_of_week(ts) == h]
    low, median, high = np.quantile(mine, [0.05, 0.5, 0.95])
    assert view.band_now is not None and view.band_now == view.hours[h]
    assert view.band_now.median == pytest.approx(median, abs=1e-3)
    assert (view.band_now.low, view.band_now.high) == pytest.approx((low, high), abs=1e-3)
    assert view.latest == pytest.approx(stored[-1][1])
    assert view.outside == (not low - 1e-3 <= stored[-1][1] <= high + 1e-3)

    short = series_insights.baseline(store, EntityKind.vm, SHORT, "cpu_pct", now)
    assert short.state is BaselineState.learning and short.hours == ()
    assert short.band_now is None and short.outside is None and short.history_days < 7


def test_cli_baseline_and_forecast_name_the_vm_and_metric(filled: Path) -> None:
    url = f"duckdb://{filled}"
    run = CliRunner().invoke
    r = run(cli_app, ["metrics", "baseline", UUID, "cpu_pct", "--store", url, "-o", "json"])
    assert r.exit_code == 0, r.output
    body = json.loads(r.stdout)
    assert body["state"] == "ready" and len(body["hours"]) == 168 and body["metric"] == "cpu_pct"
    r = run(cli_app, ["metrics", "baseline", SHORT, "cpu_pct", "--store", url])
    assert r.exit_code == 0 and "learning" in r.stdout

    args = ["--horizon", "24h", "--step", "1h", "--store", url, "-o", "csv"]
    positional = run(cli_app, ["metrics", "forecast", UUID, "cpu_pct", *args])
    assert positional.exit_code == 0, positional.output
    rows = list(csv.DictReader(io.StringIO(positional.stdout)))
    assert len(rows) == 24
    assert all(float(x["lower"]) <= float(x["forecast"]) <= float(x["upper"]) for x in rows)
    flags = run(cli_app, ["metrics", "forecast", "--vm", UUID, "--metric", "cpu_pct", *args])
    assert flags.stdout == positional.stdout
    both = run(cli_app, ["metrics", "forecast", UUID, "cpu_pct", "--vm", SHORT, *args])
    assert isinstance(both.exception, ValidationError) and both.exception.exit_code == 2
    assert "give VM or --vm, not both" in str(both.exception)


@pytest.fixture
def client(store: DuckDBStore, tmp_path: Path) -> Iterator[TestClient]:
    """The whole app (its guard, error handlers and permissions) on the filled store, called
    with a real token."""
    settings = Settings(home=tmp_path / "home")
    inventory = Inventory.from_settings(settings)
    token = TokenStore(inventory.db).create("series-tests")
    api = create_app(inventory, settings=settings, metrics=store)
    with TestClient(api, headers={"Authorization": f"Bearer {token}"}) as c:
        yield c


def test_rest_baseline_and_forecast_equal_the_service(
    client: TestClient, store: DuckDBStore
) -> None:
    answer = client.get("/api/v1/metrics/baseline", params={"id": UUID, "metric": "cpu_pct"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    view = series_insights.baseline(store, EntityKind.vm, UUID, "cpu_pct", int(time.time()))
    assert body["state"] == "ready" and body["needs_hours"] == view.needs_hours
    assert [h["median"] for h in body["hours"]] == [h.median for h in view.hours]
    assert body["latest"] == view.latest

    params = {"id": UUID, "metric": "cpu_pct", "horizon": "24h", "step": "1h"}
    got = client.get("/api/v1/metrics/forecast", params=params).json()
    want = series_insights.forecast(
        store, EntityKind.vm, UUID, "cpu_pct", int(time.time()), 86400, 3600
    )
    assert got["start"] == want.start and got["step"] == 3600 and len(got["steps"]) == 24
    assert [s["forecast"] for s in got["steps"]] == [s.forecast for s in want.steps]

    bad = client.get("/api/v1/metrics/forecast", params={**params, "metric": "nope"})
    assert bad.status_code == 422 and "unknown metric" in bad.json()["detail"]
