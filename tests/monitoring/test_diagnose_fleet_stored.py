"""The fleet diagnosis on a real DuckDB metrics filled with a constructed day: on kvm-03 seven VMs
starved since 14:05 by the two VMs of batch-etl, beside steady ones; on kvm-05 one VM at its
own CPU limit; kvm-07 quiet. The service reads set-based (a couple of queries per chunk of
whole hosts, never one per VM), agrees with the per-VM diagnosis, and the CLI and REST give
its sentences."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from corral.api.app import create_app
from corral.cli.main import app as cli_app
from corral.config import Settings
from corral.domain.metrics import SampleBatch, SeriesKey
from corral.errors import ValidationError
from corral.inventory.service import Inventory
from corral.metrics.model import EntityKind
from corral.metrics.store import DuckDBStore, MetricsStore
from corral.metrics.store.base import SeriesColumns
from corral.security.token_store import TokenStore
from corral.services import diagnosis
from tests.metrics.conftest import store, victoria_url  # noqa: F401  (fixtures)

STEP = 300
VICTIMS = [f"00000000-0000-0000-0000-0000000001{i:02d}" for i in range(7)]
ETL = ["00000000-0000-0000-0000-0000000002e1", "00000000-0000-0000-0000-0000000002e2"]
STEADY = [f"00000000-0000-0000-0000-0000000003{i:02d}" for i in range(4)]
BUSY = "00000000-0000-0000-0000-0000000004b1"
QUIET = [f"00000000-0000-0000-0000-0000000005{i:02d}" for i in range(5)]


def _now() -> int:
    return int(time.time()) // STEP * STEP


def _fleet(now: int) -> SampleBatch:
    """A day of 5-minute samples before ``now``; trouble starts 40 minutes before it."""
    ts = np.arange(now - 86400, now, STEP, dtype=np.int64)
    late = ts >= now - 2400
    keys: list[SeriesKey] = []
    hosts: list[str] = []
    cols: list[tuple[int, int, np.ndarray]] = []

    def put(kind: EntityKind, entity: str, host: str, metric: str, values: np.ndarray) -> None:
        if host not in hosts:
            hosts.append(host)
        keys.append(SeriesKey(kind, entity, metric))
        cols.append((len(keys) - 1, hosts.index(host), values))

    def vm(uuid: str, host: str, cpu: float, wait: np.ndarray, share: np.ndarray) -> None:
        put(EntityKind.vm, uuid, host, "cpu_pct", np.full(len(ts), cpu))
        put(EntityKind.vm, uuid, host, "cpu_wait_pct", wait)
        put(EntityKind.vm, uuid, host, "cpu_steal_pct", np.full(len(ts), 0.3))
        put(EntityKind.vm, uuid, host, "mem_used_pct", np.full(len(ts), 50.0))
        put(EntityKind.vm, uuid, host, "cpu_host_pct", share)

    calm = np.full(len(ts), 1.0)
    for i, uuid in enumerate(VICTIMS):
        vm(uuid, "kvm-03", 30.0, np.where(late, 25.0 + i, 1.0), np.full(len(ts), 3.0))
    for uuid in ETL:
        vm(uuid, "kvm-03", 95.0, calm, np.where(late, 40.0, 4.0))
    for uuid in STEADY:
        vm(uuid, "kvm-03", 20.0, calm, np.full(len(ts), 2.0))
    vm(BUSY, "kvm-05", 97.0, calm, np.full(len(ts), 30.0))
    for uuid in QUIET:
        vm(uuid, "kvm-07", 10.0, calm, np.full(len(ts), 2.0))
    for host in ("kvm-03", "kvm-05", "kvm-07"):
        put(EntityKind.host, host, host, "host_iowait_pct", np.full(len(ts), 1.0))
    n = len(ts)
    return SampleBatch(
        keys,
        hosts,
        np.repeat([c[0] for c in cols], n).astype(np.int64),
        np.repeat([c[1] for c in cols], n).astype(np.int64),
        np.tile(ts, len(cols)),
        np.concatenate([c[2] for c in cols]).astype(np.float64),
    )


class CountingStore(DuckDBStore):
    """The real DuckDB metrics, counting the reads the fleet diagnosis makes."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.reads: list[str] = []

    def series(self, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        self.reads.append("series")
        return super().series(*args, **kwargs)  # type: ignore[arg-type]

    def series_many(
        self, kind: EntityKind, entities: Sequence[str], *args: object, **kwargs: object
    ) -> SeriesColumns:
        self.reads.append(f"series_many {kind.value} {len(entities)}")
        return super().series_many(kind, entities, *args, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def filled(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    now = _now()
    path = tmp_path / "m.duckdb"
    metrics = DuckDBStore(path)
    metrics.write(_fleet(now))
    metrics.close()
    yield path, now


def test_the_fleet_summary_names_the_starved_vms_and_batch_etl(
    filled: tuple[Path, int],
) -> None:
    path, now = filled
    metrics = DuckDBStore(path)
    try:
        units = dict.fromkeys(ETL, "batch-etl")
        got = diagnosis.fleet_summary(metrics, now, 86400, units=units)
    finally:
        metrics.close()
    assert got.diagnosed == 19
    first = got.groups[0]
    assert first.host == "kvm-03" and first.cause is diagnosis.Cause.host_cpu_contention
    assert sorted(first.vms) == VICTIMS and first.culprits == tuple(ETL)
    assert first.since == now - 2400
    assert first.sentence.startswith("7 VMs on kvm-03 slowed by host CPU contention since ")
    assert "; cause: the 2 VMs of batch-etl" in first.sentence
    # the batch VMs themselves run at 95 %: their own demand (two VMs: more impact than one)
    assert [(g.host, g.cause.value, sorted(g.vms)) for g in got.groups[1:]] == [
        ("kvm-03", "own_demand", ETL),
        ("kvm-05", "own_demand", [BUSY]),
    ]
    assert got.healthy == 19 - 7 - 1 - 2


def test_reads_are_set_based_per_chunk_of_whole_hosts_and_agree_with_one_vm(
    filled: tuple[Path, int],
) -> None:
    path, now = filled
    metrics = CountingStore(path)
    try:
        whole = list(diagnosis.diagnose_fleet(metrics, now, 86400, chunk_size=1000))
        # one read a resolution (the hours before the judged one, then 5-minute buckets)
        assert metrics.reads == ["series_many vm 19"] * 2 + ["series_many host 3"] * 2
        metrics.reads.clear()
        chunked = list(diagnosis.diagnose_fleet(metrics, now, 86400, chunk_size=5))
        # kvm-03's 13 VMs stay together (neighbours are read with the VM); 1 + 5 > 5
        assert [r for r in metrics.reads if " vm " in r] == [
            *["series_many vm 13"] * 2,
            *["series_many vm 1"] * 2,
            *["series_many vm 5"] * 2,
        ]
        assert "series" not in metrics.reads
        assert chunked == whole
        one = {d.vm: d for d in whole}[VICTIMS[3]]
        alone = diagnosis.diagnose(metrics, VICTIMS[3], now, 86400)
        assert one.findings[0].cause == alone.findings[0].cause
        assert one.findings[0].culprits == alone.findings[0].culprits == tuple(ETL)
    finally:
        metrics.close()


def test_cli_fleet_prints_the_sentences_and_json(filled: tuple[Path, int]) -> None:
    path, _ = filled
    url = f"duckdb://{path}"
    r = CliRunner().invoke(cli_app, ["metrics", "diagnose", "--fleet", "--store", url, "-o", "csv"])
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0] == "19 VMs diagnosed: 10 in trouble in 3 groups, 9 fine"
    assert lines[1].startswith("host,cause,since,vms,impact,summary")
    assert lines[2].startswith("kvm-03,host_cpu_contention,")
    assert "7 VMs on kvm-03 slowed by host CPU contention" in lines[2]
    j = CliRunner().invoke(
        cli_app, ["metrics", "diagnose", "--fleet", "--store", url, "-o", "json"]
    )
    body = json.loads(j.stdout)
    assert body["groups"][0]["culprits"] == ETL and body["diagnosed"] == 19
    both = CliRunner().invoke(cli_app, ["metrics", "diagnose", VICTIMS[0], "--fleet"])
    assert isinstance(both.exception, ValidationError)
    assert "either a VM or --fleet" in str(both.exception)


def test_rest_fleet_diagnosis_equals_the_service(filled: tuple[Path, int], tmp_path: Path) -> None:
    path, now = filled
    metrics = DuckDBStore(path)
    settings = Settings(home=tmp_path / "home")
    inventory = Inventory.from_settings(settings)
    token = TokenStore(inventory.db).create("fleet-diagnose-tests")
    api = create_app(inventory, settings=settings, metrics=metrics)
    try:
        with TestClient(api, headers={"Authorization": f"Bearer {token}"}) as c:
            got = c.get("/api/v1/metrics/diagnose/fleet", params={"history": "1d"})
        assert got.status_code == 200, got.text
        body = got.json()
        assert now <= body["at"]
        want = diagnosis.fleet_summary(metrics, body["at"], 86400)
        assert [g["sentence"] for g in body["groups"]] == [g.sentence for g in want.groups]
        assert body["healthy"] == want.healthy and body["groups"][0]["vms"][0] in VICTIMS
    finally:
        metrics.close()


def test_both_metric_stores_give_the_same_summary(
    store: MetricsStore,  # noqa: F811
) -> None:
    """DuckDB and a real VictoriaMetrics process: the same constructed day, the same groups."""
    now = _now()
    store.write(_fleet(now))
    got = diagnosis.fleet_summary(store, now, 86400, units=dict.fromkeys(ETL, "batch-etl"))
    assert got.diagnosed == 19 and got.healthy == 9
    assert [(g.host, g.cause.value, sorted(g.vms), g.culprits) for g in got.groups] == [
        ("kvm-03", "host_cpu_contention", VICTIMS, tuple(ETL)),
        ("kvm-03", "own_demand", ETL, ()),
        ("kvm-05", "own_demand", [BUSY], ()),
    ]
    assert "cause: the 2 VMs of batch-etl" in got.groups[0].sentence


LEAKY = "00000000-0000-0000-0000-0000000006c1"


def _leaking_week(now: int) -> SampleBatch:
    """Five days of a VM whose used memory climbs 6 points a day (a leak), beside a steady one."""
    ts = np.arange(now - 5 * 86400, now, STEP, dtype=np.int64)
    rising = 40.0 + 6.0 * (ts - ts[0]) / 86400
    keys: list[SeriesKey] = []
    values: list[np.ndarray] = []
    for uuid, mem in ((LEAKY, rising), (STEADY[0], np.full(len(ts), 45.0))):
        for metric, v in (
            ("cpu_pct", np.full(len(ts), 20.0)),
            ("cpu_wait_pct", np.full(len(ts), 1.0)),
            ("mem_used_pct", mem),
            ("cpu_host_pct", np.full(len(ts), 2.0)),
        ):
            keys.append(SeriesKey(EntityKind.vm, uuid, metric))
            values.append(v)
    n = len(ts)
    return SampleBatch(
        keys,
        ["kvm-09"],
        np.repeat(np.arange(len(keys)), n).astype(np.int64),
        np.zeros(len(keys) * n, dtype=np.int64),
        np.tile(ts, len(keys)),
        np.concatenate(values).astype(np.float64),
    )


def test_the_default_history_is_the_setting_and_long_enough_to_see_a_leak(
    tmp_path: Path,
) -> None:
    """A leak needs 3 days of daily means: the default history (diagnosis_history_s, 7 days)
    finds it in the CLI and the REST API; a day of history (the setting lowered) cannot."""
    now = _now()
    path = tmp_path / "leak.duckdb"
    metrics = DuckDBStore(path)
    metrics.write(_leaking_week(now))
    metrics.close()
    url = f"duckdb://{path}"
    home = ["--home", str(tmp_path / "home")]  # the settings are read afresh for each command
    cmd = [*home, "metrics", "diagnose", "--fleet", "--store", url, "-o", "json"]
    week = json.loads(CliRunner().invoke(cli_app, cmd).stdout)
    assert [(g["cause"], g["vms"]) for g in week["groups"]] == [("memory_leak", [LEAKY])]
    assert week["groups"][0]["exhaustion_at"] > now and week["healthy"] == 1
    day = CliRunner().invoke(cli_app, cmd, env={"CORRAL_DIAGNOSIS_HISTORY": "86400"})
    assert day.exit_code == 0, day.output
    assert json.loads(day.stdout)["groups"] == []
    one = CliRunner().invoke(
        cli_app, [*home, "metrics", "diagnose", LEAKY, "--store", url, "-o", "json"]
    )
    assert json.loads(one.stdout)["findings"][0]["cause"] == "memory_leak"

    metrics = DuckDBStore(path)
    settings = Settings(home=tmp_path / "home")
    assert settings.diagnosis_history_s == 7 * 86400
    inventory = Inventory.from_settings(settings)
    token = TokenStore(inventory.db).create("fleet-history-tests")
    api = create_app(inventory, settings=settings, metrics=metrics)
    try:
        with TestClient(api, headers={"Authorization": f"Bearer {token}"}) as c:
            default = c.get("/api/v1/metrics/diagnose/fleet").json()
            short = c.get("/api/v1/metrics/diagnose/fleet", params={"history": "1d"}).json()
            vm = c.get("/api/v1/metrics/diagnose", params={"id": LEAKY}).json()
        assert [g["cause"] for g in default["groups"]] == ["memory_leak"]
        assert short["groups"] == []
        assert vm["findings"][0]["cause"] == "memory_leak"
    finally:
        metrics.close()
