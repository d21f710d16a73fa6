"""Lifecycle events from a real libvirtd trigger a sync at once, long before the next poll."""

from __future__ import annotations

import threading
import time

from guest import GuestFactory, run_virsh

from corral.inventory.service import Inventory
from corral.inventory.watch import Watcher


def test_virsh_destroy_is_recorded_without_waiting_for_the_poll(
    inventory: Inventory, guest_factory: GuestFactory, realhost_uris: list[str]
) -> None:
    g = guest_factory(0)
    inventory.add_host("real-1", realhost_uris[0])
    syncs: list[list[str] | None] = []
    watcher = Watcher(
        inventory, poll_interval=3600, debounce=0.3, on_sync=lambda hosts, _r: syncs.append(hosts)
    )
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not watcher.watched and time.monotonic() < deadline:
            time.sleep(0.1)
        assert watcher.watched == {"real-1": True}
        assert inventory.find_vm(g.uuid).state == "running"
        run_virsh(realhost_uris[0], "destroy", g.name)
        deadline = time.monotonic() + 30
        while inventory.find_vm(g.uuid).state != "shutoff":
            assert time.monotonic() < deadline, "the event never triggered a sync"
            time.sleep(0.2)
    finally:
        watcher.stop()
        thread.join(timeout=10)
    assert ["real-1"] in syncs  # an event-triggered sync of that host, not the hourly poll
    assert inventory.find_vm(g.uuid).history[-1].kind == "stopped"
