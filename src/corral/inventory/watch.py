"""Keep the inventory current: sync a host as soon as libvirt reports a lifecycle event on it,
and poll every host on an interval (the only way for connections without events).

Event-triggered syncs are debounced: a burst of events (a host booting 40 VMs)
becomes one sync of that host.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from corral.errors import CorralError
from corral.hypervisor.events import ensure_event_loop
from corral.inventory.service import Inventory
from corral.inventory.sync import SyncReport

log = logging.getLogger(__name__)


class Watcher:
    def __init__(
        self,
        inventory: Inventory,
        *,
        poll_interval: float = 300.0,
        debounce: float = 1.0,
        on_sync: Callable[[list[str] | None, SyncReport], None] | None = None,
    ) -> None:
        self.inv = inventory
        self.poll_interval = poll_interval
        self.debounce = debounce
        self.on_sync = on_sync
        self._dirty: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.watched: dict[str, bool] = {}  # host -> has lifecycle events

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def _subscribe(self) -> None:
        ensure_event_loop()
        for host in self.inv.list_hosts():
            name = host.name
            if name in self.watched:
                continue
            try:
                hv = self.inv.open_host(name)
            except CorralError as exc:
                log.warning("cannot watch host %s: %s", name, exc.message)
                continue
            self.watched[name] = hv.watch_lifecycle(self._marker(name))

    def _marker(self, host: str) -> Callable[[str, str], None]:
        def mark(_uuid: str, _event: str) -> None:
            self._mark(host)

        return mark

    def _mark(self, host: str) -> None:
        with self._lock:
            self._dirty.add(host)
        self._wake.set()

    def _sync(self, hosts: list[str] | None) -> None:
        try:
            report = self.inv.sync(hosts)
        except CorralError as exc:
            log.warning("sync failed: %s", exc.message)
            return
        if self.on_sync:
            self.on_sync(hosts, report)

    def run(self, duration: float | None = None) -> None:
        """Watch until ``stop()`` (or for ``duration`` seconds)."""
        ensure_event_loop()
        self.inv.pool.close_all()  # reopen connections with the event loop in place
        end = None if duration is None else time.monotonic() + duration
        next_poll = 0.0
        while not self._stop.is_set() and (end is None or time.monotonic() < end):
            now = time.monotonic()
            if now >= next_poll:
                self._sync(None)
                self._subscribe()
                next_poll = now + self.poll_interval
            timeout = next_poll - time.monotonic()
            if end is not None:
                timeout = min(timeout, end - time.monotonic())
            self._wake.wait(max(0.0, timeout))
            self._wake.clear()
            if self._stop.is_set():
                break
            time.sleep(self.debounce)  # let a burst of events settle
            with self._lock:
                dirty, self._dirty = sorted(self._dirty), set()
            if dirty:
                self._sync(dirty)
