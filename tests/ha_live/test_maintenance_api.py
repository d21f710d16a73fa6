"""Maintenance and drills over REST (jobs) on test-driver hosts, and the manager's promise
for a host in maintenance: an evacuated one is never checked nor fenced, one that still
runs a protected VM is watched (the simulator's failure_during_maintenance scenario).

The test driver cannot migrate: libvirt's own refusal is the failed migration here, and
the VM must stay where it was (the real migrations are in tests/realhost).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from corral.config import Settings
from corral.engines.ha_manager import Manager
from corral.engines.ha_manager.sim import SimEnvironment
from corral.engines.planning.model import VM, Fleet, Host
from corral.errors import ConfigError, ConflictError
from corral.inventory.service import Inventory
from corral.services import ha_live_views
from corral.services.ha_drill import DrillService, report_from_events
from corral.services.ha_live import HALiveService
from corral.services.ha_live_policy import DrillPolicy, parse_policy
from corral.store import ha_maintenance, ha_state
from corral.store import models as m
from tests.api.support import Api, api_fixture, settings_fixture  # noqa: F401 - fixtures

NODES = Path(__file__).resolve().parents[1] / "fixtures" / "nodes"
SQLITE_ONLY = pytest.mark.parametrize("db", ["sqlite"], indirect=True)


@pytest.fixture
def hosts(inventory: Inventory, tmp_path: Path) -> Inventory:
    nodes = tmp_path / "nodes"
    shutil.copytree(NODES, nodes)
    for host in ("host-a", "host-b"):
        inventory.add_host(host, f"test://{nodes / f'{host}.xml'}")
    return inventory


@SQLITE_ONLY
def test_enter_is_a_job_a_refused_migration_leaves_the_vm_and_the_host_entering(
    hosts: Inventory, api: Api
) -> None:
    job = api.job("/api/v1/ha/maintenance/host-a/enter", {})
    assert job["state"] == "succeeded", job
    result = job["result"]
    assert result["host"] == "host-a" and result["state"] == "entering"
    tried = [mv for mv in result["moves"] if mv["target"] is not None]
    assert tried, result
    for mv in tried:  # libvirt's own reason, and the VM still runs on host-a
        assert mv["outcome"] == "failed"
        assert "still running on its host" in mv["detail"] and "libvirt" in mv["detail"]
    mark = ha_maintenance.marks(hosts.db, "default")["host-a"]
    assert mark.state == "entering" and mark.moves == {} and mark.by == "api:tests"
    with hosts.db.session() as s:
        audited = s.scalars(
            select(m.AuditEntry).where(m.AuditEntry.target.startswith("ha-maintenance"))
        ).all()
    assert audited and {a.actor for a in audited} == {"tests"}

    out = api.post("/api/v1/ha/maintenance/host-a/exit", {})
    assert out.status_code == 200 and out.json()["state"] == "out"
    assert ha_maintenance.marks(hosts.db, "default") == {}
    again = api.post("/api/v1/ha/maintenance/host-a/exit", {})
    assert again.status_code == 409
    assert again.headers["content-type"].startswith("application/problem+json")


@SQLITE_ONLY
def test_enter_on_an_unknown_host_fails_the_job_and_marks_nothing(
    hosts: Inventory, api: Api
) -> None:
    job = api.job("/api/v1/ha/maintenance/nope/enter", {})
    assert job["state"] == "failed" and job["error"]["status"] == 404
    assert ha_maintenance.marks(hosts.db, "default") == {}


@SQLITE_ONLY
def test_a_drill_on_a_host_the_policy_does_not_allow_is_refused(hosts: Inventory, api: Api) -> None:
    job = api.job("/api/v1/ha/drills", {"host": "host-a"})
    assert job["state"] == "failed"
    assert "drills.allow" in job["error"]["detail"]


def _fleet() -> Fleet:
    return Fleet(
        hosts=[Host(name=h, cores=4, cpu_mhz=2000, memory_mib=8192) for h in ("H1", "H2", "H3")],
        vms=[VM(name="db", vcpus=1, memory_mib=1024, host="H1")],
    )


def test_an_evacuated_host_in_maintenance_is_never_fenced() -> None:
    fleet = _fleet()
    env = SimEnvironment(fleet)
    manager = Manager(fleet, {"H1": {"db": "H2"}})
    manager.tick(env)
    manager.set_maintenance("H1", True, env.clock)
    assert manager.vm_moved("db", "H1", "H2", env.clock)[0].kind == "vm_migrated"
    assert manager.vm_moved("db", "H1", "H2", env.clock) == []  # told again: nothing to do
    env.vms["db"].host = "H2"  # where the live migration put it
    env.power_off("H1")  # its daemon stops for the work
    kinds = []
    for _ in range(30):
        env.clock += 5
        kinds += [(e.kind, e.host) for e in manager.tick(env)]
    assert not {k for k, h in kinds if h == "H1"} & {"host_suspect", "host_failed", "fence_begin"}
    assert manager.state.vms["db"].host == "H2"
    manager.set_maintenance("H1", False, env.clock)  # back in service: watched again
    env.clock += 5
    assert ("host_suspect", "H1") in [(e.kind, e.host) for e in manager.tick(env)]


def test_a_host_in_maintenance_that_still_runs_a_protected_vm_is_watched() -> None:
    fleet = _fleet()
    env = SimEnvironment(fleet)
    manager = Manager(fleet, {"H1": {"db": "H2"}})
    manager.tick(env)
    manager.set_maintenance("H1", True, env.clock)
    env.power_off("H1")
    env.clock += 5
    assert ("host_suspect", "H1") in [(e.kind, e.host) for e in manager.tick(env)]


def test_cli_enter_reports_and_exits_4_while_entering_then_exit_clears(
    hosts: Inventory, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "CORRAL_HOME": str(tmp_path / "home"),
        "CORRAL_DATABASE_URL": hosts.db.url.render_as_string(hide_password=False),
    }
    refused = subprocess.run(  # the node files lie outside the CLI's node folder: no answer
        [sys.executable, "-m", "corral", "ha", "maintenance", "enter", "host-a"],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert refused.returncode == 5 and "stays 'entering'" in refused.stderr
    assert ha_maintenance.marks(hosts.db, "default")["host-a"].state == "entering"
    env["CORRAL_NODE_DIR"] = str(tmp_path / "nodes")

    def corral(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "corral", "ha", "maintenance", *args]
        return subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)

    entered = corral("enter", "host-a", "-o", "json")
    assert entered.returncode == 4, entered.stderr
    report = json.loads(entered.stdout)
    assert report["state"] == "entering" and report["moves"]
    left = corral("exit", "host-a")
    assert left.returncode == 0 and "out of maintenance" in left.stdout
    again = corral("exit", "host-a")
    assert again.returncode == 4 and "not in maintenance" in again.stderr
    assert "Traceback" not in again.stderr


def test_drill_report_figures_come_from_the_events() -> None:
    killed = 1000.0
    events = [
        {"t": 1004.5, "kind": "host_failed", "host": "H1", "vm": None, "detail": ""},
        {"t": 1005.5, "kind": "host_fenced", "host": "H1", "vm": None, "detail": "already off"},
        {"t": 1008.0, "kind": "vm_recovered", "host": "H2", "vm": "db", "detail": "from H1"},
        {"t": 1070.0, "kind": "vm_recovered", "host": "H3", "vm": "web", "detail": "from H1"},
        {"t": 1070.0, "kind": "vm_not_recovered", "host": "H1", "vm": "big", "detail": "full"},
        {"t": 1005.5, "kind": "vm_down_unprotected", "host": "H1", "vm": "tmp", "detail": ""},
        {"t": 1070.0, "kind": "host_recovered", "host": "H1", "vm": None, "detail": ""},
    ]
    plan = {"db": "H2", "web": "H2", "big": "H3"}
    drills = DrillPolicy(rto_s=60.0, rto={"db": 5.0})
    report = report_from_events("H1", killed, ["big", "db", "tmp", "web"], plan, events, drills)
    assert (report.detection_s, report.fence_s, report.ended_by) == (4.5, 5.5, "host_recovered")
    by = {v.vm: v for v in report.vms}
    assert (by["db"].restart_s, by["db"].rto_met) == (8.0, False)  # its own RTO: 5 s
    assert (by["web"].planned, by["web"].actual, by["web"].rto_met) == ("H2", "H3", False)
    assert by["big"].actual is None and by["big"].why == "full"
    assert report.not_recovered == ("big",) and not report.all_met
    assert report.unprotected == ("tmp",) and "tmp" not in by  # down by design, no RTO


@SQLITE_ONLY
def test_a_drill_needs_a_leading_manager(hosts: Inventory, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    policy = parse_policy({"drills": {"allow": "*"}}, settings)
    with pytest.raises(ConflictError, match="No HA manager is running"):
        DrillService(hosts, settings, policy=policy).run("host-a")
    HALiveService(hosts, settings, policy=policy, instance="t").round()
    with pytest.raises(ConfigError, match="no fence method"):
        DrillService(hosts, settings, policy=policy).run("host-a")


@SQLITE_ONLY
def test_abort_without_a_run_puts_the_host_back_in_service_with_events_and_audit(
    hosts: Inventory, api: Api, tmp_path: Path
) -> None:
    settings = Settings(home=tmp_path / "home")
    manager = HALiveService(hosts, settings, policy=parse_policy({}, settings), instance="t")
    manager.round()
    job = api.job("/api/v1/ha/maintenance/host-a/enter", {})  # the test driver refuses
    assert job["result"]["state"] == "entering"
    kinds = {e["kind"] for e in ha_state.events(hosts.db, "default")}
    assert {"evacuation_begin", "migration_begin", "migration_failed", "evacuation_end"} <= kinds
    assert ("host_maintenance_enter", "host-a") in [
        (e.kind, e.host) for e in manager.round().events
    ]

    out = api.post("/api/v1/ha/maintenance/host-a/abort", {})
    assert out.status_code == 200 and out.json()["state"] == "aborted", out.text
    assert ha_maintenance.marks(hosts.db, "default")["host-a"].state == "aborted"
    assert ("host_maintenance_exit", "host-a") in [(e.kind, e.host) for e in manager.round().events]
    assert ha_live_views.status(hosts.db).hosts[0].maintenance is False
    aborted = [e for e in ha_state.events(hosts.db, "default") if e["kind"] == "evacuation_abort"]
    assert [e["host"] for e in aborted] == ["host-a"] and "api:tests" in aborted[0]["detail"]
    with hosts.db.session() as s:
        audited = s.scalars(select(m.AuditEntry).where(m.AuditEntry.target.startswith("ha-"))).all()
    assert {a.actor for a in audited if a.target.startswith("ha-maintenance")} == {"tests"}
    assert any(a.target.startswith("ha-event") and a.actor == "tests" for a in audited)

    again = api.post("/api/v1/ha/maintenance/host-a/abort", {})
    assert again.status_code == 409 and "nothing to abort" in again.json()["detail"]
    assert again.headers["content-type"].startswith("application/problem+json")


@SQLITE_ONLY
def test_abort_of_a_live_run_is_a_request_it_reads_and_a_second_run_is_refused(
    hosts: Inventory, api: Api
) -> None:
    db = hosts.db
    ha_maintenance.enter(db, "default", "host-a", "cli:x", runner="other-process")
    with pytest.raises(ConflictError, match="being evacuated by other-process"):
        ha_maintenance.enter(db, "default", "host-a", "cli:y", runner="me")
    out = api.post("/api/v1/ha/maintenance/host-a/abort", {})
    assert out.status_code == 200 and out.json()["state"] == "aborting"
    assert ha_maintenance.beat(db, "default", "host-a", "other-process", {}, (0, 1)) is True
    ha_maintenance.finish(db, "default", "host-a", "other-process", {}, "aborted")
    mark = ha_maintenance.marks(db, "default")["host-a"]
    assert (mark.state, mark.runner, mark.active) == ("aborted", None, False)
    ha_maintenance.enter(db, "default", "host-a", "cli:y", runner="me")  # may enter again
    again = ha_maintenance.marks(db, "default")["host-a"]
    assert (again.state, again.runner, again.abort_requested) == ("entering", "me", False)


@SQLITE_ONLY
def test_cli_abort_of_a_host_already_emptied_says_use_exit(
    hosts: Inventory, tmp_path: Path
) -> None:
    ha_maintenance.enter(hosts.db, "default", "host-a", "cli:x")
    ha_maintenance.record(hosts.db, "default", "host-a", {}, "in")
    env = {
        **os.environ,
        "CORRAL_HOME": str(tmp_path / "home"),
        "CORRAL_DATABASE_URL": hosts.db.url.render_as_string(hide_password=False),
    }
    cmd = [sys.executable, "-m", "corral", "ha", "maintenance", "abort", "host-a"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 4 and "corral ha maintenance exit host-a" in done.stderr
    assert "Traceback" not in done.stderr
