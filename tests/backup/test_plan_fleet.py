"""The backup plan of fleet files: the fixture's known outcome, staggering, measured change
rates from a real metrics store, coverage, and the fleet format's backup keys."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from corral.cli import context
from corral.cli.main import app as cli_app
from corral.domain.metrics import EntityKind, Sample, SampleBatch
from corral.engines.backup import BackupInputs, BackupVM, IOBudget, Policy, plan_backups
from corral.engines.backup.fleetdoc import backup_inputs
from corral.errors import ValidationError
from corral.metrics.store import DuckDBStore
from corral.services import backup
from corral.services.fleet import parse_fleet_document, read_fleet_file
from tests.backup.invariants import gaps, violations

FLEETS = Path(__file__).resolve().parents[1] / "fixtures" / "fleets"
SMALL = FLEETS / "backup_small.yaml"


def _fixture_inputs() -> BackupInputs:
    inputs, _ = backup_inputs(yaml.safe_load(SMALL.read_text()), "fixture")
    return inputs


def test_the_fixture_fleet_has_its_known_plan() -> None:
    result = backup.plan(read_fleet_file(SMALL), Policy())
    plan = result.plan
    assert [s.vm for s in plan.scheduled] == ["db-01", "etl-01", "files-01", "web-01", "web-02"]
    assert [r.vm for r in plan.rebuilt] == ["build-01"]
    assert result.without_host == ("spare-01",)
    batch, etl = plan.misses
    assert (batch.vm, batch.reason) == ("batch-01", "changes-too-fast")
    assert [(f.kind, f.mib_s) for f in batch.fixes] == [("job-rate", 24)]
    assert (etl.vm, etl.reason) == ("etl-02", "no-room")
    assert [(f.kind, f.target, f.mib_s) for f in etl.fixes] == [
        ("bandwidth", "host:h2", 20),
        ("lower-tier", "backup-only", 100),
    ]
    assert violations(_fixture_inputs(), Policy(), plan) == []
    files = next(s for s in plan.scheduled if s.vm == "files-01")
    assert all(m >= 22 * 60 or m < 6 * 60 for m in files.starts)  # backup-only's night window
    assert result.summary.peak_host_utilisation <= 1.0


def test_vms_sharing_a_host_are_staggered_not_started_together() -> None:
    vms = tuple(BackupVM(f"vm{i}", "h1", "d1", 100.0, "restart", 24.0) for i in range(10))
    inputs = BackupInputs(vms, (IOBudget("h1", 100),), (IOBudget("d1", 1000),))
    plan = plan_backups(inputs, Policy())
    assert len(plan.scheduled) == 10 and not plan.misses
    first_runs = sorted(min(s.starts) for s in plan.scheduled)
    assert len(set(first_runs)) == 10  # the host takes one job at a time: ten start times
    assert violations(inputs, Policy(), plan) == []
    assert all(max(gaps(s.starts)) <= 240 for s in plan.scheduled)


def _doc(**vm: Any) -> dict[str, Any]:
    return {
        "format": "corral-fleet/1",
        "hosts": [{"name": "h1", "cores": 8, "cpu_mhz": 2000, "memory_mib": 65536}],
        "vms": [
            {"name": "db", "uuid": "0f0e0d0c-0000-4000-8000-000000000001", "host": "h1",
             "vcpus": 2, "memory_mib": 4096, "disks": [{"path": "/p/db.qcow2", "size_gb": 100}],
             **vm}
        ],
    }  # fmt: skip


def test_change_rates_come_from_the_metrics_store_when_it_has_history(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "metrics.duckdb")
    uuid, now = "0f0e0d0c-0000-4000-8000-000000000001", 1_800_000_000
    per_s = 2 * 1024**3 / 86400  # 2 GiB written a day
    samples = [
        Sample(EntityKind.vm, uuid, "h1", "disk_write_bytes_per_s", now - 3600 * h, per_s)
        for h in range(1, 48)
    ]
    store.write(SampleBatch.from_samples(samples))
    snapshot = parse_fleet_document(_doc())
    result = backup.plan(snapshot, Policy(), store, now=now)
    (db,) = result.plan.scheduled
    assert result.summary.measured_change_rates == 1
    assert db.change_source == "given"
    assert db.gib_per_run == pytest.approx(2 * 240 / 1440, abs=1e-3)  # restart: every 4 h
    without = backup.plan(snapshot, Policy()).plan.scheduled[0]
    assert without.change_source == "default"
    assert without.gib_per_run == pytest.approx(100 * 0.05 * 240 / 1440, abs=1e-3)
    store.close()


def test_coverage_names_each_uncovered_vm_and_why() -> None:
    cov = backup.coverage(backup.plan(read_fleet_file(SMALL), Policy()))
    assert (cov.vms, cov.covered, cov.rebuilt) == (9, 5, 1)
    why = {u.vm: u.reason for u in cov.uncovered}
    assert why == {"batch-01": "changes-too-fast", "etl-02": "no-room", "spare-01": "no-host"}
    etl = next(u for u in cov.uncovered if u.vm == "etl-02")
    assert "20 MiB/s more on host h2" in etl.text


def test_cli_plan_json_is_the_services_result() -> None:
    context.settings.cache_clear()
    out = CliRunner().invoke(cli_app, ["backup", "plan", "-f", str(SMALL), "-o", "json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    want = backup.plan(read_fleet_file(SMALL), Policy()).to_dict()
    doc["summary"].pop("seconds"), want["summary"].pop("seconds")
    assert doc == want
    assert doc["scheduled"][0]["starts"][0].count(":") == 1  # HH:MM


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"datastores": [{"name": "d", "speed": 1}]}, "datastores[0]: unknown key 'speed'"),
        ({"datastores": [{"name": "d", "backup_mib_s": -1}]}, "backup_mib_s must be a whole"),
        (
            {"datastores": [{"name": "d", "backup_windows": [{"hours": "8-9", "mib_s": 1}]}]},
            "must look like 22:00-06:00",
        ),
        ({"vm": {"change_gib_per_day": "lots"}}, "change_gib_per_day must be a number"),
        ({"vm": {"datastor": "d"}}, "vms[0]: unknown key 'datastor'"),
    ],
)
def test_bad_backup_keys_in_a_fleet_are_named(change: dict[str, Any], says: str) -> None:
    doc = _doc(**change.pop("vm", {}))
    doc.update(change)
    with pytest.raises(ValidationError) as err:
        backup.plan(parse_fleet_document(doc), Policy())
    assert says in err.value.message


def test_an_old_planning_fleet_file_plans_with_the_defaults() -> None:
    result = backup.plan(read_fleet_file(FLEETS / "small_cluster.yaml"), Policy())
    s = result.summary
    assert (s.vms, s.scheduled, s.misses, s.rebuilt, s.without_host) == (13, 11, 0, 1, 1)
    assert s.peak_host_utilisation <= 1.0
