"""The schedule of restore tests: which VMs' newest points are due for a test, and the policy's
``restore_test`` section. (The tests themselves boot real VMs: tests/realhost/
test_backup_restore_test_real.py.)"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from corral.engines.backup import Policy, parse_policy
from corral.errors import ValidationError
from corral.services.backup_exec import HostOpener
from corral.services.backup_restore_test import RestoreTester
from corral.store import models as m
from corral.store.backup_repo import Repository
from corral.store.db import Database
from tests.backup.points import T0, make_point

OTHER = "0f6a3c1e-2222-4222-8333-944455556666"


def _tested(db: Database, vm_uuid: str, point: str, days: float) -> None:
    with db.session() as s:
        s.add(
            m.RestoreTestRow(
                vm_uuid=vm_uuid, vm_name="db-01", point_id=point, host="h", network="n",
                ok=True, detail="booted", restore_seconds=1.0, seconds=3.0, rto_minutes=240,
                rto_met=True, tested_at=T0 + timedelta(days=days),
            )
        )  # fmt: skip


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
def test_the_newest_point_of_each_vm_is_due_until_tested_within_the_schedule(
    db: Database, tmp_path: Path
) -> None:
    repo = Repository(tmp_path)
    make_point(repo, 1, None, db)
    newest = make_point(repo, 2, None, db)
    other = make_point(repo, 3, None, db, vm=OTHER)
    weekly = parse_policy({"restore_test": {"every": "7d"}}, "test policy")

    def due(days: float) -> list[str]:
        at = T0 + timedelta(days=days)
        return [p.id for p in RestoreTester(db, repo, HostOpener(db), weekly, lambda: at).due()]

    assert sorted(due(0)) == sorted([newest.id, other.id])  # never tested
    _tested(db, newest.vm_uuid, newest.id, 0)
    assert due(6.9) == [other.id]
    assert sorted(due(7)) == sorted([newest.id, other.id])  # a week after its last test


def test_the_policy_reads_restore_test_knobs_and_refuses_unknown_ones() -> None:
    policy = parse_policy(
        {"restore_test": {"every": "1d", "boot_marker": "login:", "settle_s": 2}}, "p.yaml"
    )
    knobs = policy.restore_test
    assert (knobs.every_minutes, knobs.boot_marker, knobs.settle_s) == (1440, "login:", 2)
    assert Policy().restore_test.every_minutes == 7 * 1440
    with pytest.raises(ValidationError, match="restore_test: unknown key 'often'"):
        parse_policy({"restore_test": {"often": 1}}, "p.yaml")
    with pytest.raises(ValidationError, match="settle_s must be a whole number"):
        parse_policy({"restore_test": {"settle_s": "soon"}}, "p.yaml")
