"""Maintenance and drills over REST (jobs) on test-driver hosts, and the manager's promise
for a host in maintenance: an evacuated one is never checked nor fenced, one that still
runs a protected VM is watched (the simulator's failure_during_maintenance scenario).

The test driver cannot migrate: libvirt's own refusal is the failed migration here, and
the VM must stay where it was (the real migrations are in tests/realhost).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from corral.engines.ha_manager import Manager
from corral.engines.ha_manager.sim import SimEnvironment
from corral.engines.planning.model import VM, Fleet, Host
from corral.inventory.service import Inventory
from corral.store import ha_maintenance
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
