"""The poller shard in this process, on test-driver hosts and both databases: an unchanged
host costs no sync (its fingerprint is equal), a changed one is synced from the read already
made, every read moves the host to its own next slot, and the status names overdue hosts."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from lxml import etree
from sqlalchemy import select, text, update

from corral.api.app import create_app
from corral.engines.polling import next_due, phases
from corral.inventory.service import Inventory
from corral.security.token_store import TokenStore
from corral.services.poll_store import PollStore
from corral.services.poller import PollConfig, Shard
from corral.services.users import UserService
from corral.store import models as m
from tests.conftest import Clock
from tests.inventory.conftest import domain, edit_node

CYCLE = 60.0


def _shard(inventory: Inventory) -> Shard:
    return Shard(inventory, PollConfig(cycle_s=CYCLE, events=False))


def _all_due(inventory: Inventory, clock: Clock) -> None:
    with inventory.db.session() as s:
        s.execute(update(m.PollState).values(due_at=clock()))


def _rows(inventory: Inventory) -> dict[str, m.PollState]:
    with inventory.db.session() as s:
        got = s.execute(select(m.Host.name, m.PollState).join(m.PollState)).all()
        s.expunge_all()
        return {name: row for name, row in got}


def _last_sync(inventory: Inventory) -> dict[str, object]:
    with inventory.db.session() as s:
        return dict(s.execute(select(m.Host.name, m.Host.last_sync_at)).all())


def _more_memory(node: etree._Element) -> None:
    memory = domain(node, "web-01").find("memory")
    assert memory is not None
    memory.text = "8192"


def test_unchanged_hosts_skip_the_sync_and_changed_ones_are_synced(
    inventory: Inventory, nodes: Path, clock: Clock
) -> None:
    inventory.add_host("host-a", f"test://{nodes / 'host-a.xml'}")
    inventory.add_host("host-b", f"test://{nodes / 'host-b.xml'}")
    shard = _shard(inventory)
    shard._plan(force=True)
    _all_due(inventory, clock)
    assert shard.round() == 2
    assert shard.stats.synced == 2 and shard.stats.unchanged == 0
    assert inventory.find_vm("web-01").memory_mib == 4096
    synced_at = _last_sync(inventory)

    clock.advance(seconds=CYCLE)
    _all_due(inventory, clock)
    assert shard.round() == 2
    assert shard.stats.unchanged == 2 and shard.stats.synced == 2  # no sync this time
    assert _last_sync(inventory) == synced_at  # the sync never ran: no row was written
    assert all(r.reads == 2 and r.reason == "schedule" for r in _rows(inventory).values())

    edit_node(nodes / "host-a.xml", _more_memory)
    clock.advance(seconds=CYCLE)
    _all_due(inventory, clock)
    assert shard.round() == 2
    assert shard.stats.synced == 3 and shard.stats.unchanged == 3
    change = inventory.find_vm("web-01").history[-1].details
    assert change == {"memory_max_mib": {"from": 4096, "to": 8192}}
    after = _last_sync(inventory)
    assert after["host-a"] != synced_at["host-a"] and after["host-b"] == synced_at["host-b"]


def test_each_read_moves_the_host_to_its_own_next_slot(
    inventory: Inventory, nodes: Path, clock: Clock
) -> None:
    inventory.add_host("host-a", f"test://{nodes / 'host-a.xml'}")
    inventory.add_host("host-b", f"test://{nodes / 'host-b.xml'}")
    shard = _shard(inventory)
    shard._plan(force=True)
    first = {n: r.due_at for n, r in _rows(inventory).items()}
    start = clock()
    for due in first.values():  # new hosts: first read at their slot, within one cycle
        assert start < due <= start + timedelta(seconds=CYCLE)
    assert shard.round() == 0  # nothing due yet
    clock.advance(seconds=CYCLE)
    read_at = clock()
    assert shard.round() == 2
    phase = phases(["host-a", "host-b"], CYCLE)
    for name, row in _rows(inventory).items():
        want = next_due(phase[name], read_at.timestamp(), CYCLE)
        assert abs(row.due_at.timestamp() - want) < 1e-3
        assert row.lease_owner is None and row.read_at == read_at


def test_status_names_the_hosts_not_read_within_the_cycle(
    inventory: Inventory, nodes: Path, clock: Clock
) -> None:
    inventory.add_host("host-a", f"test://{nodes / 'host-a.xml'}")
    inventory.add_host("host-b", f"test://{nodes / 'host-b.xml'}")
    shard = _shard(inventory)
    shard._plan(force=True)
    with inventory.db.session() as s:  # only host-a is due
        ids = dict(s.execute(select(m.Host.name, m.Host.id)).all())
        s.execute(
            update(m.PollState).where(m.PollState.host_id == ids["host-a"]).values(due_at=clock())
        )
    assert shard.round() == 1
    clock.advance(seconds=CYCLE / 2)
    now = clock()
    status = PollStore(inventory.db).status(now, CYCLE)
    assert (status.hosts, status.read_in_cycle, status.overdue) == (2, 1, 0)
    clock.advance(seconds=CYCLE)
    status = PollStore(inventory.db).status(clock(), CYCLE)
    assert status.overdue == 2 and status.overdue_hosts[0] in ("host-a", "host-b")

    UserService(inventory.db).add("tests", roles=["auditor"])
    token = TokenStore(inventory.db).create("tests", "tests")
    client = TestClient(create_app(inventory), headers={"Authorization": f"Bearer {token}"})
    body = client.get("/api/v1/polling").json()
    assert body["hosts"] == 2 and body["cycle_s"] == 300.0  # the server's settings
    assert body["read_in_cycle"] + body["overdue"] <= 2


def test_a_round_the_database_refuses_is_logged_and_the_shard_goes_on(
    inventory: Inventory, nodes: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """The schedule's table is renamed away under a running shard: its rounds fail in the
    database, it says so and keeps going, and reads the host once the table is back."""
    inventory.add_host("host-a", f"test://{nodes / 'host-a.xml'}")
    shard = Shard(inventory, PollConfig(cycle_s=CYCLE, events=False, tick_s=0.05, lease_s=0.2))
    shard._plan(force=True)
    _all_due(inventory, clock)
    with inventory.db.engine.begin() as conn:
        conn.execute(text("ALTER TABLE poll_state RENAME TO poll_state_away"))
    thread = threading.Thread(target=shard.run, daemon=True)
    thread.start()
    try:
        _until(lambda: shard.stats.failed_rounds >= 2, "the shard never met the missing table")
        assert thread.is_alive()
        with inventory.db.engine.begin() as conn:
            conn.execute(text("ALTER TABLE poll_state_away RENAME TO poll_state"))
        _until(lambda: shard.stats.rounds >= 1, "the shard read nothing once the table was back")
    finally:
        shard.stop()
        thread.join(timeout=30)
    assert _rows(inventory)["host-a"].reads == 1
    failed = [r.getMessage() for r in caplog.records if "poller round failed" in r.getMessage()]
    assert failed and all("poll_state" in msg for msg in failed[:1]), failed


def _until(done: Callable[[], bool], why: str) -> None:
    give_up = time.monotonic() + 60
    while not done():
        assert time.monotonic() < give_up, why
        time.sleep(0.05)
