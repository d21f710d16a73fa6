"""`corral plan rebalance --apply` with its source host hung (libvirtd frozen with SIGSTOP).

A PRIVATE set of three hosts (haset.py): four guests on ha1, one on ha2 and one
on ha3, so the plan moves guests off ha1. Checked, in three steps:

1. ha1 frozen before the run: it stops at its sync, says ha1 did not answer and that nothing
   was moved; nothing moved.
2. ha1 frozen once the run has begun (its migrations in flight): the run still ends (the
   migration deadline, then the cancel's), every move off ha1 is reported not done with why,
   naming ha1 as not answering; and once ha1 is thawed and things settle, every guest runs
   on exactly one host (none on two, none lost).
3. The same command again, everything thawed: the rebalance is finished (state done), each
   guest runs once, where the fresh plan said.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import libvirt
import pytest
from haset import HARig, PrivateHosts, by_name
from test_rebalance_apply import MIGRATION, _final

from corral.config import Settings
from corral.errors import HostUnreachableError
from corral.hypervisor.uri import HostAccess
from corral.services.ha_live_policy import parse_policy
from corral.services.rebalance_apply import RebalanceApply, RebalanceApplyReport

#: slow enough that a migration is in flight when ha1 freezes; short deadlines
HUNG = {**MIGRATION, "bandwidth_mib_s": 8, "timeout_s": 20}
HOST_TIMEOUT_S = 10.0
#: a run that hangs reaches this (a hang guard, not a speed target)
HANG_GUARD_S = 600.0
#: how long the guests must stay put, with no migration job, to count as settled
QUIET_S = 15.0


def _apply(service: RebalanceApply, progress: object = None) -> RebalanceApplyReport:
    """service.apply in a thread, so a run that hangs fails the test instead of hanging it."""
    got: list[object] = []

    def run() -> None:
        try:
            got.append(service.apply(10, progress))  # type: ignore[arg-type]
        except BaseException as exc:  # handed to the test
            got.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(HANG_GUARD_S)
    assert got, "the rebalance did not end"
    if isinstance(got[0], BaseException):
        raise got[0]
    assert isinstance(got[0], RebalanceApplyReport)
    return got[0]


def _migrating(dom: libvirt.virDomain) -> bool:
    """A migration job on the domain (out of it, or into it: then libvirt refuses the job
    statistics), or the domain not running (paused for the switch-over)."""
    try:
        if not dom.isActive():
            return False
        job = dom.jobInfo()[0]
        return job != libvirt.VIR_DOMAIN_JOB_NONE or dom.state()[0] != libvirt.VIR_DOMAIN_RUNNING
    except libvirt.libvirtError:  # "statistics only on the source host", or just gone
        return True


def _settled(hosts: PrivateHosts, uuids: dict[str, str]) -> dict[str, list[str]]:
    """Guest -> the hosts running it, once no guest has had a migration job on any host for
    QUIET_S with the same placement: a thawed daemon may still start a migration it was sent
    while frozen (the cancel came too late), a moment after a first quiet look."""
    give_up = time.monotonic() + 300
    quiet: tuple[float, dict[str, list[str]]] | None = None
    while True:
        busy = False
        for uri in hosts.uris:
            conn = libvirt.open(uri)
            try:
                for dom in conn.listAllDomains():
                    if dom.UUIDString() in uuids.values():
                        busy = busy or _migrating(dom)
            finally:
                conn.close()
        if busy:
            quiet = None
        else:
            where = {vm: hosts.where(uuid) for vm, uuid in uuids.items()}
            if quiet is None or quiet[1] != where:
                quiet = (time.monotonic(), where)
            elif time.monotonic() - quiet[0] >= QUIET_S:
                return where
        assert time.monotonic() < give_up, "a migration never settled"
        time.sleep(1)


@pytest.mark.timeout(1800)  # six guests booted and migrated under TCG, deadlines waited out
@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
def test_rebalance_with_a_hung_source_fails_cleanly_and_can_be_run_again(ha: HARig) -> None:
    inventory = ha.inventory(HostAccess(timeout_s=HOST_TIMEOUT_S))
    guests = by_name(ha.boot([0, 0, 0, 0, 1, 2]))
    uuids = {vm: guest.uuid for vm, guest in guests.items()}
    first = {vm: guest.host for vm, guest in guests.items()}
    planned = _final(inventory)
    assert planned and all(first[vm] == "ha1" for vm in planned), planned
    settings = Settings(home=ha.tmp_path / "home", host_timeout_s=HOST_TIMEOUT_S)
    service = RebalanceApply(
        inventory, settings, policy=parse_policy({"migration": HUNG}, settings)
    )
    daemon = ha.hosts.daemon_pid(0)

    # 1. frozen before the run: refused at the sync, nothing moved
    os.kill(daemon, signal.SIGSTOP)
    try:
        with pytest.raises(HostUnreachableError, match="ha1 did not answer; nothing was moved"):
            _apply(service)
    finally:
        os.kill(daemon, signal.SIGCONT)
    assert _settled(ha.hosts, uuids) == {vm: [host] for vm, host in first.items()}

    # 2. frozen once the run has begun
    frozen: list[float] = []

    def freeze(_fraction: float) -> None:
        if not frozen:
            os.kill(daemon, signal.SIGSTOP)
            frozen.append(time.monotonic())

    try:
        report = _apply(service, freeze)
    finally:
        os.kill(daemon, signal.SIGCONT)
    assert frozen and report.state == "partial", report
    off_ha1 = [mv for mv in report.moves if mv.source == "ha1"]
    assert off_ha1 and all(mv.outcome != "moved" for mv in off_ha1), report.moves
    for mv in off_ha1:  # the report says why: ha1 did not answer
        assert "ha1" in mv.detail and "answer" in mv.detail, mv
    where = _settled(ha.hosts, uuids)
    assert all(len(hosts) == 1 for hosts in where.values()), where  # never two, never none

    # 3. again, all thawed: finished; each guest once, where the fresh plan said
    planned = _final(inventory)
    report = _apply(service)
    assert report.state == "done" and report.placement == planned, report
    where = _settled(ha.hosts, uuids)
    before = {vm: hosts[0] for vm, hosts in where.items()}
    assert where == {vm: [planned.get(vm, before[vm])] for vm in uuids}, where
