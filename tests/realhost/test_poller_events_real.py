"""A guest changed behind Corral's back (``virsh destroy``/``start`` on a real libvirtd)
reaches the inventory through the lifecycle event on the poller's connection, while the
host's next scheduled read is an hour away."""

from __future__ import annotations

import threading
import time

from guest import GuestFactory, run_virsh
from sqlalchemy import select

from corral.errors import NotFoundError
from corral.inventory.service import Inventory
from corral.services.poll_store import PollStore
from corral.services.poller import PollConfig, Shard
from corral.store import models as m


def _row(inventory: Inventory, host: str) -> m.PollState:
    with inventory.db.session() as s:
        row = s.scalars(
            select(m.PollState)
            .join(m.Host, m.Host.id == m.PollState.host_id)
            .where(m.Host.name == host)
        ).one()
        s.expunge(row)
        return row


def _wait_state(inventory: Inventory, uuid: str, state: str) -> None:
    give_up = time.monotonic() + 60
    while True:
        try:
            if inventory.find_vm(uuid).state == state:
                return
        except NotFoundError:  # not read yet
            pass
        assert time.monotonic() < give_up, f"the VM never became {state} in the inventory"
        time.sleep(0.2)


def _wait_read(inventory: Inventory, host: str, after: int) -> m.PollState:
    """The host's poll state once it counts more than ``after`` reads: the sync's rows are
    visible a moment before the poll state records the read that wrote them."""
    give_up = time.monotonic() + 60
    while True:
        row = _row(inventory, host)
        if row.reads > after:
            return row
        assert time.monotonic() < give_up, f"no read of {host} after read {after} was recorded"
        time.sleep(0.1)


def test_virsh_start_and_destroy_reach_the_inventory_by_event_not_by_the_poll(
    inventory: Inventory, guest_factory: GuestFactory, realhost_uris: list[str]
) -> None:
    g = guest_factory(0)
    host = f"poller-real-{g.uuid[:8]}"
    inventory.add_host(host, realhost_uris[0])
    shard = Shard(inventory, PollConfig(cycle_s=3600, debounce_s=0.3, tick_s=0.2, lease_s=120))
    shard._plan(force=True)
    host_id = _row(inventory, host).host_id
    PollStore(inventory.db).want([host_id], inventory.clock())  # the first read now, not in an hour
    thread = threading.Thread(target=shard.run, daemon=True)
    thread.start()
    try:
        _wait_state(inventory, g.uuid, "running")
        first = _wait_read(inventory, host, 0)
        scheduled = first.due_at
        # The test's clock stands still, so the host's next scheduled read (somewhere in the
        # hour-long cycle, by its phase) never comes while the test runs: only events can read.
        assert scheduled > inventory.clock()
        assert shard.conns.open_count == 1

        run_virsh(realhost_uris[0], "destroy", g.name)
        _wait_state(inventory, g.uuid, "shutoff")
        after_stop = _wait_read(inventory, host, first.reads)
        assert after_stop.reason == "event" and after_stop.due_at == scheduled

        run_virsh(realhost_uris[0], "start", g.name)
        _wait_state(inventory, g.uuid, "running")
        after_start = _wait_read(inventory, host, after_stop.reads)
        assert after_start.reason == "event" and after_start.due_at == scheduled
        assert after_start.reads > after_stop.reads > first.reads
    finally:
        shard.stop()
        thread.join(timeout=30)
    assert shard.stats.event_reads >= 2
    # A start may be read mid-way (QEMU starts paused, then resumes): what follows the stop
    # depends on when the read came, but the stop is recorded and the VM ends up running.
    kinds = [e.kind for e in inventory.find_vm(g.uuid).history]
    assert "stopped" in kinds and kinds.index("stopped") < len(kinds) - 1
