"""``corral metrics diagnose VM`` and /api/v1/metrics/diagnose on a real DuckDB store filled with
a constructed day of a host: one VM starved by two batch neighbours whose CPU jumped in the last
hour, a steady neighbour, and a VM on another host. The service finds the host and the
neighbours from the store; the CLI and REST give its answer."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from corral.api.app import create_app
from corral.cli.main import app as cli_app
from corral.config import Settings
from corral.domain.metrics import Sample, SampleBatch
from corral.errors import NotFoundError
from corral.inventory.service import Inventory
from corral.metrics.model import EntityKind
from corral.metrics.store import DuckDBStore
from corral.security.token_store import TokenStore
from corral.services import diagnosis

SLOW = "00000000-0000-0000-0000-0000000000d1"
ETL1 = "00000000-0000-0000-0000-0000000000d2"
ETL2 = "00000000-0000-0000-0000-0000000000d3"
WEB = "00000000-0000-0000-0000-0000000000d4"
ELSEWHERE = "00000000-0000-0000-0000-0000000000d5"
STEP = 300


def _day(now: int) -> list[Sample]:
    """A day of 5-minute samples ending now; the last hour is the trouble."""
    out: list[Sample] = []
    vm = EntityKind.vm
    for ts in range(now - 86400, now, STEP):
        late = ts >= now - 3600
        rows = [
            (vm, SLOW, "kvm-03", "cpu_pct", 35.0),
            (vm, SLOW, "kvm-03", "cpu_wait_pct", 30.0 if late else 1.0),
            (vm, SLOW, "kvm-03", "cpu_steal_pct", 8.0 if late else 0.5),
            (vm, SLOW, "kvm-03", "cpu_host_pct", 4.0),
            (vm, ETL1, "kvm-03", "cpu_host_pct", 48.0 if late else 5.0),
            (vm, ETL2, "kvm-03", "cpu_host_pct", 40.0 if late else 5.0),
            (vm, WEB, "kvm-03", "cpu_host_pct", 10.0),
            (vm, ELSEWHERE, "kvm-07", "cpu_host_pct", 90.0 if late else 5.0),
            (EntityKind.host, "kvm-03", "kvm-03", "host_cpu_pct", 99.0 if late else 25.0),
            (EntityKind.host, "kvm-03", "kvm-03", "host_iowait_pct", 1.0),
        ]
        out += [Sample(k, e, h, m, ts, v) for k, e, h, m, v in rows]
    return out


@pytest.fixture
def filled(tmp_path: Path) -> Path:
    path = tmp_path / "m.duckdb"
    store = DuckDBStore(path)
    store.write(SampleBatch.from_samples(_day(int(time.time()) - 60)))
    store.close()
    return path


@pytest.fixture
def store(filled: Path) -> Iterator[DuckDBStore]:
    s = DuckDBStore(filled)
    yield s
    s.close()


def test_the_service_finds_the_host_and_the_neighbours_that_starve_the_vm(
    store: DuckDBStore,
) -> None:
    d = diagnosis.diagnose(store, SLOW, int(time.time()), 86400)
    assert d.host == "kvm-03"
    assert d.cause is diagnosis.Cause.host_cpu_contention
    assert d.findings[0].culprits == (ETL1, ETL2)  # not WEB (steady), not ELSEWHERE (kvm-07)
    assert "38 %" in d.findings[0].evidence


def test_a_vm_without_samples_is_not_found(store: DuckDBStore) -> None:
    with pytest.raises(NotFoundError, match="no stored CPU samples"):
        diagnosis.diagnose(store, "00000000-0000-0000-0000-00000000ffff", int(time.time()))


def test_cli_prints_the_headline_and_the_findings(filled: Path) -> None:
    url = f"duckdb://{filled}"
    r = CliRunner().invoke(cli_app, ["metrics", "diagnose", SLOW, "--store", url, "-o", "csv"])
    assert r.exit_code == 0, r.output
    first = r.stdout.splitlines()[0]
    assert first.startswith(f"{SLOW} on kvm-03: host cpu contention since ")
    assert f"cause: {ETL1}, {ETL2}" in first
    assert "host_cpu_contention" in r.stdout
    j = CliRunner().invoke(cli_app, ["metrics", "diagnose", SLOW, "--store", url, "-o", "json"])
    body = json.loads(j.stdout)
    assert body["findings"][0]["cause"] == "host_cpu_contention"


@pytest.fixture
def client(store: DuckDBStore, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(home=tmp_path / "home")
    inventory = Inventory.from_settings(settings)
    token = TokenStore(inventory.db).create("diagnose-tests")
    api = create_app(inventory, settings=settings, metrics=store)
    with TestClient(api, headers={"Authorization": f"Bearer {token}"}) as c:
        yield c


def test_rest_diagnose_equals_the_service(client: TestClient, store: DuckDBStore) -> None:
    got = client.get("/api/v1/metrics/diagnose", params={"id": SLOW, "history": "1d"})
    assert got.status_code == 200, got.text
    body = got.json()
    want = diagnosis.diagnose(store, SLOW, int(time.time()), 86400)
    assert body["host"] == "kvm-03" and body["headline"] == diagnosis.headline(want)
    assert [f["cause"] for f in body["findings"]] == [f.cause.value for f in want.findings]
    assert body["findings"][0]["culprits"] == [ETL1, ETL2]
    missing = client.get("/api/v1/metrics/diagnose", params={"id": "nobody"})
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
