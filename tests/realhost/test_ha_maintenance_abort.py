"""Aborting a maintenance evacuation, and a target host dying mid-migration, on real hosts.

A PRIVATE set of three hosts (see test_ha_live.py). The migration stream is capped at
1 MiB/s so a 96 MiB guest takes long enough to be caught in flight. First the evacuation
is aborted from another service (as `corral ha maintenance abort` in another process):
libvirt's abortJob cancels the migration, the guest keeps running on its host alone,
never rebooted, and the host is back in service. Then the evacuation is begun again and
its target host is killed (daemon and QEMU, the fence agent's "off") half-way: the guest
still runs on its host alone, the run reports the failure and the host stays 'entering'.
"""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path
from typing import Any

import libvirt
import pytest
from cryptography.fernet import Fernet
from guest import READY_MARKER, RealhostEnv
from test_ha_live import HOSTS, PrivateHosts, _fence, _fence_spec, private_hosts  # noqa: F401
from test_ha_maintenance import _guest, _where

from corral.config import Settings
from corral.inventory.service import Inventory
from corral.security.secrets import SecretBox
from corral.services import ha_live_views
from corral.services.ha_live import HALiveService
from corral.services.ha_live_policy import parse_policy
from corral.services.ha_maintenance import MaintenanceReport, MaintenanceService
from corral.store import ha_maintenance, ha_state
from corral.store.db import Database


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


def _wait(what: str, check: Any, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _report(thread: threading.Thread, out: list[Any]) -> MaintenanceReport:
    thread.join(timeout=120)
    assert not thread.is_alive(), "the evacuation did not end"
    [result] = out
    assert isinstance(result, MaintenanceReport), result
    return result


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_abort_cancels_the_migration_in_flight_then_a_dying_target_leaves_the_guest_home(
    private_hosts: PrivateHosts,  # noqa: F811
    realhost_env: RealhostEnv,
    db: Database,
    tmp_path: Path,
) -> None:
    inventory = Inventory(db, SecretBox(Fernet.generate_key()))
    for name, uri in zip(HOSTS, private_hosts.uris, strict=True):
        inventory.add_host(name, uri)
    dom, console = _guest(private_hosts, realhost_env, tmp_path)
    uuid = dom.UUIDString()
    settings = Settings(home=tmp_path / "home", ha_grace_s=3, ha_check_interval_s=1)
    slow = {"uri": "tcp://127.0.0.1", "unsafe": True, "bandwidth_mib_s": 1}
    policy = parse_policy({"fence": _fence_spec(private_hosts), "migration": slow}, settings)
    manager = HALiveService(inventory, settings, policy=policy, instance="t")
    try:
        manager.round()
        # 1. abort while the migration is in flight
        thread, out = _in_background(MaintenanceService(inventory, settings, policy=policy), "ha1")
        _wait("the migration to be in flight", lambda: _migrating(dom))
        aborted = MaintenanceService(inventory, settings, policy=policy, by="cli:op").abort("ha1")
        assert aborted.state == "aborted", aborted
        report = _report(thread, out)
        assert report.state == "aborted"
        [move] = report.moves
        assert move.outcome == "cancelled" and "still running on its host" in move.detail
        assert _where(private_hosts, uuid) == ["ha1"]
        assert console.read_text(errors="replace").count(READY_MARKER) == 1  # never rebooted
        kinds = [(e["kind"], e["host"]) for e in ha_state.events(db, "default")]
        for kind in ("evacuation_abort_asked", "evacuation_abort", "migration_cancel"):
            assert (kind, "ha1") in kinds, kinds
        assert ("migration_cancelled", move.target) in kinds
        mark = ha_maintenance.mark(db, "default", "ha1")
        assert mark is not None and (mark.state, mark.runner) == ("aborted", None)
        manager.round()
        assert {h.name: h.maintenance for h in ha_live_views.status(db).hosts}["ha1"] is False

        # 2. the target dies half-way through the migration
        thread, out = _in_background(MaintenanceService(inventory, settings, policy=policy), "ha1")
        _wait("the second migration to be in flight", lambda: _migrating(dom))
        target = next(
            e["host"] for e in reversed(ha_state.events(db, "default"))
            if e["kind"] == "migration_begin"
        )  # fmt: skip
        assert _fence(private_hosts, HOSTS.index(target), "off") == 0
        report = _report(thread, out)
        assert report.state == "entering"
        [move] = report.moves
        assert (move.outcome, move.target) == ("failed", target)
        assert "still running on its host" in move.detail
        assert _where(private_hosts, uuid) == ["ha1"]
        assert dom.isActive() and dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING
        assert console.read_text(errors="replace").count(READY_MARKER) == 1
        mark = ha_maintenance.mark(db, "default", "ha1")
        assert mark is not None and (mark.state, mark.runner) == ("entering", None)
    finally:
        manager.close()
        with contextlib.suppress(libvirt.libvirtError):
            if dom.isActive():
                dom.destroy()
            dom.undefine()
