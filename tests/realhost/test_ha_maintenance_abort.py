"""Aborting a maintenance evacuation, and a target host dying mid-migration, on real hosts.

A PRIVATE set of three hosts (haset.py). The migration stream is capped at 1 MiB/s so a
96 MiB guest takes long enough to be caught in flight. First the evacuation is aborted from
another service (as `corral ha maintenance abort` in another process): libvirt's abortJob
cancels the migration, the guest keeps running on its host alone, never rebooted, and the
host is back in service. Then the evacuation is begun again and its target host is killed
(daemon and QEMU, the fence agent's "off") half-way: the guest still runs on its host
alone, the run reports the failure and the host stays 'entering'.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import libvirt
import pytest
from haset import HOSTS, HARig, wait

from corral.services import ha_live_views
from corral.services.ha_live import HALiveService
from corral.services.ha_live_policy import parse_policy
from corral.services.ha_maintenance import MaintenanceReport, MaintenanceService
from corral.store import ha_maintenance, ha_state


def _in_background(service: MaintenanceService, host: str) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(service.enter(host))
        except BaseException as exc:  # handed to the test's thread
            out.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def _migrating(dom: Any) -> bool:
    """libvirt has an outgoing migration job on the guest, with data sent already."""
    with contextlib.suppress(libvirt.libvirtError):
        info = dom.jobInfo()
        return bool(info[0] != libvirt.VIR_DOMAIN_JOB_NONE and info[7] > 0)
    return False


def _report(thread: threading.Thread, out: list[Any]) -> MaintenanceReport:
    thread.join(timeout=120)
    assert not thread.is_alive(), "the evacuation did not end"
    [result] = out
    assert isinstance(result, MaintenanceReport), result
    return result


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_abort_cancels_the_migration_in_flight_then_a_dying_target_leaves_the_guest_home(
    ha: HARig,
) -> None:
    inventory = ha.inventory()
    [guest] = ha.boot()
    dom = guest.dom
    settings = ha.settings(grace_s=3)
    slow = {"uri": "tcp://127.0.0.1", "unsafe": True, "bandwidth_mib_s": 1}
    policy = parse_policy({"fence": ha.hosts.fence_spec(), "migration": slow}, settings)
    manager = HALiveService(inventory, settings, policy=policy, instance="t")
    try:
        manager.round()
        # 1. abort while the migration is in flight
        thread, out = _in_background(MaintenanceService(inventory, settings, policy=policy), "ha1")
        wait("the migration to be in flight", lambda: _migrating(dom), timeout_s=60)
        aborted = MaintenanceService(inventory, settings, policy=policy, by="cli:op").abort("ha1")
        assert aborted.state == "aborted", aborted
        report = _report(thread, out)
        assert report.state == "aborted"
        [move] = report.moves
        assert move.outcome == "cancelled" and "still running on its host" in move.detail
        assert ha.hosts.where(guest.uuid) == ["ha1"]
        assert guest.boots() == 1  # never rebooted
        kinds = [(e["kind"], e["host"]) for e in ha_state.events(ha.db, "default")]
        for kind in ("evacuation_abort_asked", "evacuation_abort", "migration_cancel"):
            assert (kind, "ha1") in kinds, kinds
        assert ("migration_cancelled", move.target) in kinds
        mark = ha_maintenance.mark(ha.db, "default", "ha1")
        assert mark is not None and (mark.state, mark.runner) == ("aborted", None)
        manager.round()
        assert {h.name: h.maintenance for h in ha_live_views.status(ha.db).hosts}["ha1"] is False

        # 2. the target dies half-way through the migration
        thread, out = _in_background(MaintenanceService(inventory, settings, policy=policy), "ha1")
        wait("the second migration to be in flight", lambda: _migrating(dom), timeout_s=60)
        target = next(
            e["host"] for e in reversed(ha_state.events(ha.db, "default"))
            if e["kind"] == "migration_begin"
        )  # fmt: skip
        assert ha.hosts.fence(HOSTS.index(target), "off") == 0
        report = _report(thread, out)
        assert report.state == "entering"
        [move] = report.moves
        assert (move.outcome, move.target) == ("failed", target)
        assert "still running on its host" in move.detail
        assert ha.hosts.where(guest.uuid) == ["ha1"]
        assert dom.isActive() and dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING
        assert guest.boots() == 1
        mark = ha_maintenance.mark(ha.db, "default", "ha1")
        assert mark is not None and (mark.state, mark.runner) == ("entering", None)
    finally:
        manager.close()
