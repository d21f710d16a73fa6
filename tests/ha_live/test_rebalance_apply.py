"""`plan rebalance --apply` as a job over REST, on test-driver hosts, and its ordering rules.

The test driver cannot migrate: libvirt's own refusal is the failed migration here, and the
VM must stay where it was (the real live migrations are in tests/realhost). The waves and
the skipping of steps that relied on a failed move are pure functions, checked on data.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from corral.engines.ha_manager.evacuation_run import VMMove
from corral.engines.planning.consolidation.plan import Move
from corral.inventory.service import Inventory
from corral.services.rebalance_apply import blocked_by, waves
from corral.store import models as m
from tests.api.support import Api, api_fixture, settings_fixture  # noqa: F401 - fixtures

NODES = Path(__file__).resolve().parents[1] / "fixtures" / "nodes"


@pytest.fixture
def hosts(inventory: Inventory, tmp_path: Path) -> Inventory:
    nodes = tmp_path / "nodes"
    shutil.copytree(NODES, nodes)
    for host in ("host-a", "host-b"):
        inventory.add_host(host, f"test://{nodes / f'{host}.xml'}")
    return inventory


def test_a_wave_ends_before_a_step_that_needs_an_earlier_one_done() -> None:
    steps = [
        Move("a", "h1", "h2"),
        Move("b", "h1", "h3"),
        Move("c", "h3", "h2"),  # leaves h3 while b goes there: same wave is fine
        Move("d", "h2", "h1"),  # h1 is being emptied by a and b: a new wave
        Move("e", "h4", "h1"),
        Move("d", "h1", "h4", temporary=True),  # d again: a new wave
    ]
    assert [[s.vm for s in w] for w in waves(steps)] == [["a", "b", "c"], ["d", "e"], ["d"]]
    assert waves([]) == []


def test_a_failed_move_blocks_the_steps_that_relied_on_it_only() -> None:
    failed = [VMMove("a", "h1", "h2", "failed", "libvirt: refused")]
    assert "earlier move" in blocked_by(Move("a", "h2", "h3"), failed)
    assert "room is not there" in blocked_by(Move("x", "h3", "h1"), failed)
    assert blocked_by(Move("y", "h1", "h3"), failed) == ""
    assert blocked_by(Move("z", "h3", "h2"), failed) == ""


@pytest.mark.parametrize("db", ["sqlite", "postgresql"], indirect=True)
def test_apply_is_a_job_a_refused_migration_is_reported_and_audited(
    hosts: Inventory, api: Api
) -> None:
    hosts.sync()
    plan = api.ok("/api/v1/plan/rebalance", {"live": True})
    assert plan["steps"], plan
    job = api.job("/api/v1/plan/rebalance/apply", {"max_migrations": 10})
    assert job["state"] == "succeeded", job
    result = job["result"]
    assert result["state"] == "partial" and result["planned"] == len(plan["steps"])
    assert result["placement"] == {}
    for mv, step in zip(result["moves"], plan["steps"], strict=True):
        assert (mv["vm"], mv["source"], mv["target"]) == (step["vm"], step["from"], step["to"])
        assert mv["outcome"] == "failed" and "still running on its host" in mv["detail"]
    where = {v.name: v.host for v in hosts.list_vms().items}
    assert all(where[s["vm"]] == s["from"] for s in plan["steps"])  # nothing moved
    with hosts.db.session() as s:
        audited = s.scalars(
            select(m.AuditEntry).where(m.AuditEntry.target.startswith("ha-event"))
        ).all()
    kinds = {str((a.after or {}).get("kind")) for a in audited}
    assert {"rebalance_begin", "migration_begin", "migration_failed", "rebalance_end"} <= kinds
    assert {a.actor for a in audited} == {"tests"}
    assert api.post("/api/v1/plan/rebalance/apply", {"max_migrations": 0}).status_code == 422
