"""The HA leader follows `corral plan rebalance --apply`, on real libvirtd hosts.

A leading manager watches an unbalanced fleet (four guests on ha1). A rebalance live-migrates
some of them away. Checked: at its very next round the leader records every moved guest on
its new host (not on ha1, where it no longer runs) and its failover plan protects it where it
runs now (the plan's entries for ha1 no longer name it); then the host that received the
most moved guests dies, and each of them is recovered from THAT host, by the new plan, and
runs on exactly one host. Before the leader learned rebalance moves it kept them on ha1 until
its periodic re-read: a failure of the receiving host in between left them unrecovered.

A PRIVATE set of three hosts (haset.py), never the shared one.
"""

from __future__ import annotations

import pytest
from haset import HOSTS, HARig, by_name, rounds_until
from test_rebalance_apply import MIGRATION

from corral.engines.ha_manager import VMState
from corral.services.ha_live import HALiveService
from corral.services.ha_live_policy import parse_policy
from corral.services.rebalance_apply import RebalanceApply
from corral.store import ha_state


@pytest.mark.timeout(1200)  # six guests booted and migrated under TCG
@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
def test_the_leader_follows_rebalance_moves_and_recovers_them_from_their_new_host(
    ha: HARig,
) -> None:
    inventory = ha.inventory()
    guests = by_name(ha.boot([0, 0, 0, 0, 1, 2]))
    settings = ha.settings(grace_s=4)
    spec = {"fence": ha.hosts.fence_spec(), "migration": MIGRATION}
    policy = parse_policy(spec, settings)
    leader = HALiveService(inventory, settings, policy=policy, instance="t")
    try:
        assert leader.round().leader and leader.manager is not None
        assert {vm: leader.manager.state.vms[vm].host for vm in guests} == {
            vm: guest.host for vm, guest in guests.items()
        }

        report = RebalanceApply(inventory, settings, policy=policy).apply(10)
        assert report.state == "done" and report.placement, report
        moved = report.placement  # VM -> the host it runs on now

        kinds = [e.kind for e in leader.round().events]
        manager = leader.manager
        assert manager is not None
        # where the leader records each moved guest: where it runs (read from the hosts)
        assert {vm: manager.state.vms[vm].host for vm in moved} == moved, kinds
        for vm, host in moved.items():
            assert ha.hosts.where(guests[vm].uuid) == [host]
        assert kinds.count("vm_migrated") == len(moved) and "plan_recomputed" in kinds, kinds
        # the failover plan protects each moved guest where it runs now
        for vm, host in moved.items():
            assert vm in manager.plan.get(host, {}), (vm, host, manager.plan)
            assert vm not in manager.plan.get("ha1", {}), (vm, manager.plan)
        saved = ha_state.load_state(ha.db, "default")
        assert saved is not None and saved["moves_seen"] > 0  # a new leader starts from there

        victim = max(set(moved.values()), key=lambda h: list(moved.values()).count(h))
        on_victim = sorted(vm for vm, host in moved.items() if host == victim)
        planned = {vm: manager.plan[victim][vm] for vm in on_victim}
        assert ha.hosts.fence(HOSTS.index(victim), "off") == 0
        events = rounds_until(leader, "host_recovered", limit=120)
        assert leader.manager is not None
        states = {vm: rec.state for vm, rec in leader.manager.state.vms.items()}
    finally:
        leader.close()
    recovered = {e.vm: e.host for e in events if e.kind == "vm_recovered"}
    assert {vm: recovered.get(vm) for vm in on_victim} == planned, [
        (e.kind, e.host, e.vm, e.detail) for e in events
    ]
    for vm in on_victim:
        assert ha.hosts.where(guests[vm].uuid) == [planned[vm]]
    assert all(states[vm] is VMState.running for vm in guests if vm in states), states
