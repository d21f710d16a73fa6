"""What the backup planner promises, checked on random fleets by an independent checker
(tests/backup/invariants.py): RPOs met, no host or datastore over budget at any minute,
windows kept, and every miss's reason and fixes true."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from corral.engines.backup import BackupInputs, Policy, plan_backups
from tests.backup.invariants import violations
from tests.backup.strategies import fleets, policies

SLOT = 15  # a coarser grid than the default keeps the minute-by-minute checker quick


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleets(), policies())
def test_every_promise_holds_on_random_fleets(inputs: BackupInputs, policy: Policy) -> None:
    plan = plan_backups(inputs, policy, slot_minutes=SLOT)
    assert violations(inputs, policy, plan) == []


@settings(max_examples=30, deadline=None)
@given(fleets(), policies())
def test_the_default_grid_keeps_the_promises_too(inputs: BackupInputs, policy: Policy) -> None:
    plan = plan_backups(inputs, policy)
    assert violations(inputs, policy, plan) == []
