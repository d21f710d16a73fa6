"""`corral plan rebalance --apply` on real libvirtd hosts: an unbalanced fleet (every guest
on ha1) is rebalanced by real live migrations and ends where the plan said; then, with a
target host killed while the run goes on, the migrations to it are reported failed (each
guest still running on its own host, once) and the others go on.

A PRIVATE set of three hosts (see test_ha_live.py), never the shared one.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import uuid as uuidlib
from pathlib import Path

import libvirt
import pytest
import yaml
from cryptography.fernet import Fernet
from guest import RealhostEnv, guest_xml, make_disk, wait_for_console
from test_ha_live import HOSTS, PrivateHosts, _fence, private_hosts  # noqa: F401

from corral.config import Settings
from corral.inventory.service import Inventory
from corral.security.secrets import SecretBox
from corral.services import planning
from corral.services.fleet import live_fleet
from corral.services.ha_live_policy import parse_policy
from corral.services.rebalance_apply import RebalanceApply
from corral.store.db import Database

#: shared disks in one folder libvirt cannot tell is shared (unsafe)
MIGRATION = {"uri": "tcp://127.0.0.1", "unsafe": True, "max_parallel": 2}
#: a slow stream, so a migration is still in flight when its target is killed
SLOW = {**MIGRATION, "bandwidth_mib_s": 8}


def _boot(
    hosts: PrivateHosts, env: RealhostEnv, tmp_path: Path, on: list[int]
) -> dict[str, tuple[str, str]]:
    """A guest started on each host index of ``on``, all booted: name -> (UUID, host)."""
    out, consoles = {}, []
    for i in on:
        conn = libvirt.open(hosts.uris[i])
        name = f"corral-rebal-{uuidlib.uuid4().hex[:8]}"
        consoles.append(tmp_path / f"{name}.console.log")
        xml = guest_xml(
            name, kernel=env.kernel, initrd=env.initrd, console_log=consoles[-1],
            disk_path=make_disk(tmp_path / f"{name}.qcow2", 16), disk_cache="none",
        )  # fmt: skip
        dom = conn.defineXML(xml)
        dom.create()
        out[name] = (dom.UUIDString(), HOSTS[i])
    for console in consoles:
        wait_for_console(console, timeout_s=240)
    return out


def _where(hosts: PrivateHosts, uuid: str) -> list[str]:
    """The hosts that answer and run the guest now."""
    found = []
    for name, uri in zip(HOSTS, hosts.uris, strict=True):
        with contextlib.suppress(libvirt.libvirtError):
            conn = libvirt.open(uri)
            if any(d.UUIDString() == uuid and d.isActive() for d in conn.listAllDomains()):
                found.append(name)
            conn.close()
    return found


def _final(inventory: Inventory) -> dict[str, str]:
    """VM -> host, as the rebalance plan of the fresh sync would leave each VM it moves."""
    inventory.sync()
    plan = planning.rebalance(live_fleet(inventory).fleet, 10)
    return {step.vm: step.target for step in plan.schedule.steps}


@pytest.mark.timeout(1200)  # a dozen guests booted and migrated under TCG
@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
def test_rebalance_apply_moves_guests_live_and_reports_a_killed_target(
    private_hosts: PrivateHosts,  # noqa: F811
    realhost_env: RealhostEnv,
    db: Database,
    tmp_path: Path,
) -> None:
    inventory = Inventory(db, SecretBox(Fernet.generate_key()))
    for name, uri in zip(HOSTS, private_hosts.uris, strict=True):
        inventory.add_host(name, uri)
    # rebalancing is among the hosts in use (an empty one counts as off): one guest each
    first = _boot(private_hosts, realhost_env, tmp_path, [0, 0, 0, 0, 1, 2])
    planned = _final(inventory)
    assert planned and set(planned) <= set(first) and "ha1" not in planned.values(), planned

    # 1. the CLI, all hosts up: every move done, each guest where the plan said, once
    policy = tmp_path / "ha.yaml"
    policy.write_text(yaml.safe_dump({"migration": MIGRATION}))
    env = {
        **os.environ,
        "CORRAL_HOME": str(tmp_path / "home"),
        "CORRAL_DATABASE_URL": db.url.render_as_string(hide_password=False),
        "CORRAL_HA_POLICY": str(policy),
    }
    done = subprocess.run(
        [sys.executable, "-m", "corral", "plan", "rebalance", "--apply", "-o", "json"],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr + done.stdout
    report = json.loads(done.stdout)
    assert report["state"] == "done" and report["placement"] == planned, report
    assert {mv["outcome"] for mv in report["moves"]} == {"moved"}
    for name, (uuid, host) in first.items():
        assert _where(private_hosts, uuid) == [planned.get(name, host)], name

    # 2. more guests on ha1; a target of the new plan is killed once the run has begun
    second = _boot(private_hosts, realhost_env, tmp_path, [0, 0, 0, 0])
    planned = _final(inventory)
    targets = sorted(set(planned.values()))
    assert targets, planned
    victim = max(targets, key=lambda h: sum(t == h for t in planned.values()))
    killed: list[str] = []

    def progress(_fraction: float) -> None:
        if not killed:
            assert _fence(private_hosts, HOSTS.index(victim), "off") == 0
            killed.append(victim)

    settings = Settings(home=tmp_path / "home")
    service = RebalanceApply(
        inventory, settings, policy=parse_policy({"migration": SLOW}, settings)
    )
    result = service.apply(10, progress)
    assert killed == [victim]
    assert result.state == "partial" and result.planned == len(planned)
    by_vm = {mv.vm: mv for mv in result.moves}
    uuids = {name: uuid for name, (uuid, _) in {**first, **second}.items()}
    to_victim = [vm for vm, host in planned.items() if host == victim]
    assert to_victim
    for vm in to_victim:  # reported, with why, and the guest still runs on its host alone
        mv = by_vm[vm]
        assert mv.outcome != "moved" and mv.detail, mv
        if mv.source != victim:
            assert _where(private_hosts, uuids[vm]) == [mv.source], mv
    for vm, mv in by_vm.items():  # the rest went on: a move to a live host is done
        if planned[vm] != victim and mv.source != victim and mv.outcome == "moved":
            assert _where(private_hosts, uuids[vm]) == [planned[vm]], mv
    others = [mv for mv in result.moves if planned[mv.vm] != victim and mv.source != victim]
    assert all(mv.outcome == "moved" for mv in others if not mv.detail.startswith("skipped")), [
        (mv.vm, mv.outcome, mv.detail) for mv in others
    ]
    for uuid, _ in second.values():  # never on two hosts, never lost: ha1's guests all run
        assert len(_where(private_hosts, uuid)) == 1, uuid
