"""`corral plan rebalance --apply` on real libvirtd hosts: an unbalanced fleet (every guest
on ha1) is rebalanced by real live migrations and ends where the plan said; then, with a
target host killed while the run goes on, the migrations to it are reported failed (each
guest still running on its own host, once) and the others go on.

A PRIVATE set of three hosts (haset.py), never the shared one.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from haset import HOSTS, HARig, by_name

from corral.config import Settings
from corral.inventory.service import Inventory
from corral.services import planning
from corral.services.fleet import live_fleet
from corral.services.ha_live_policy import parse_policy
from corral.services.rebalance_apply import RebalanceApply

#: shared disks in one folder libvirt cannot tell is shared (unsafe)
MIGRATION = {"uri": "tcp://127.0.0.1", "unsafe": True, "max_parallel": 2}
#: a slow stream, so a migration is still in flight when its target is killed
SLOW = {**MIGRATION, "bandwidth_mib_s": 8}


def _final(inventory: Inventory) -> dict[str, str]:
    """VM -> host, as the rebalance plan of the fresh sync would leave each VM it moves."""
    inventory.sync()
    plan = planning.rebalance(live_fleet(inventory).fleet, 10)
    return {step.vm: step.target for step in plan.schedule.steps}


@pytest.mark.timeout(1200)  # a dozen guests booted and migrated under TCG
@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
def test_rebalance_apply_moves_guests_live_and_reports_a_killed_target(ha: HARig) -> None:
    inventory = ha.inventory()
    # rebalancing is among the hosts in use (an empty one counts as off): one guest each
    first = by_name(ha.boot([0, 0, 0, 0, 1, 2]))
    planned = _final(inventory)
    assert planned and set(planned) <= set(first) and "ha1" not in planned.values(), planned

    # 1. the CLI, all hosts up: every move done, each guest where the plan said, once
    env = ha.run_env({"migration": MIGRATION})
    done = subprocess.run(
        [sys.executable, "-m", "corral", "plan", "rebalance", "--apply", "-o", "json"],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr + done.stdout
    report = json.loads(done.stdout)
    assert report["state"] == "done" and report["placement"] == planned, report
    assert {mv["outcome"] for mv in report["moves"]} == {"moved"}
    for name, guest in first.items():
        assert ha.hosts.where(guest.uuid) == [planned.get(name, guest.host)], name

    # 2. more guests on ha1; a target of the new plan is killed once the run has begun
    second = by_name(ha.boot([0, 0, 0, 0]))
    planned = _final(inventory)
    targets = sorted(set(planned.values()))
    assert targets, planned
    victim = max(targets, key=lambda h: sum(t == h for t in planned.values()))
    killed: list[str] = []

    def progress(_fraction: float) -> None:
        if not killed:
            assert ha.hosts.fence(HOSTS.index(victim), "off") == 0
            killed.append(victim)

    settings = Settings(home=ha.tmp_path / "home")
    service = RebalanceApply(
        inventory, settings, policy=parse_policy({"migration": SLOW}, settings)
    )
    result = service.apply(10, progress)
    assert killed == [victim]
    assert result.state == "partial" and result.planned == len(planned)
    by_vm = {mv.vm: mv for mv in result.moves}
    uuids = {name: guest.uuid for name, guest in {**first, **second}.items()}
    to_victim = [vm for vm, host in planned.items() if host == victim]
    assert to_victim
    for vm in to_victim:  # reported, with why, and the guest still runs on its host alone
        mv = by_vm[vm]
        assert mv.outcome != "moved" and mv.detail, mv
        if mv.source != victim:
            assert ha.hosts.where(uuids[vm]) == [mv.source], mv
    for vm, mv in by_vm.items():  # the rest went on: a move to a live host is done
        if planned[vm] != victim and mv.source != victim and mv.outcome == "moved":
            assert ha.hosts.where(uuids[vm]) == [planned[vm]], mv
    others = [mv for mv in result.moves if planned[mv.vm] != victim and mv.source != victim]
    assert all(mv.outcome == "moved" for mv in others if not mv.detail.startswith("skipped")), [
        (mv.vm, mv.outcome, mv.detail) for mv in others
    ]
    for guest in second.values():  # never on two hosts, never lost: ha1's guests all run
        assert len(ha.hosts.where(guest.uuid)) == 1, guest.name
