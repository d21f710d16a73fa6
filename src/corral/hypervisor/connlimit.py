"""A bounded set of open host connections for one poller process.

A fleet of 10,000 hosts cannot hold 10,000 connections (file descriptors, libvirtd client
limits, TLS sessions): at most ``limit`` are open at once. A caller borrows a connection and
gives it back; when the set is full, the least recently used idle connection is closed,
those without lifecycle events first, so connections that bring events stay open longest.
A borrower waits while every open connection is in use.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from corral.hypervisor.base import Hypervisor
from corral.hypervisor.pool import ConnectionPool

#: Called once per new connection: subscribe it to lifecycle events; True when it has them.
Subscribe = Callable[[str, Hypervisor], bool]


class BoundedConnections:
    def __init__(self, limit: int, subscribe: Subscribe | None = None) -> None:
        if limit < 1:
            raise ValueError("a connection limit is at least 1")
        self.limit = limit
        self._subscribe = subscribe
        self._pool = ConnectionPool()
        self._cond = threading.Condition()
        self._order: OrderedDict[str, Hypervisor] = OrderedDict()  # open, oldest use first
        self._busy: dict[str, int] = {}
        self._events: set[str] = set()
        self.opened = 0  # connections opened so far (a measure of churn)

    @property
    def open_count(self) -> int:
        with self._cond:
            return len(self._order)

    @contextmanager
    def borrow(self, key: str, uri: str, opener: Callable[[], Hypervisor]) -> Iterator[Hypervisor]:
        """A connection to ``key`` for the duration of the block."""
        self._reserve(key)
        try:
            hv = self._pool.get(key, uri, lambda: self._open(key, opener))
            with self._cond:
                self._order[key] = hv
                self._order.move_to_end(key)
            yield hv
        except BaseException:
            self.drop(key)
            raise
        finally:
            with self._cond:
                self._busy[key] -= 1
                if not self._busy[key]:
                    del self._busy[key]
                self._cond.notify_all()

    def drop(self, key: str, *, close: bool = True) -> None:
        """Forget a connection (closed unless a call on it may never return)."""
        with self._cond:
            self._order.pop(key, None)
            self._events.discard(key)
            self._cond.notify_all()
        if close:
            self._pool.discard(key)
        else:
            self._pool.forget(key)

    def close_all(self) -> None:
        with self._cond:
            self._order.clear()
            self._events.clear()
        self._pool.close_all()

    def _open(self, key: str, opener: Callable[[], Hypervisor]) -> Hypervisor:
        hv = opener()
        self.opened += 1
        if self._subscribe is not None and self._subscribe(key, hv):
            with self._cond:
                self._events.add(key)
        return hv

    def _reserve(self, key: str) -> None:
        """Count ``key`` as in use, making room for it first when it is not open."""
        with self._cond:
            while key not in self._order and len(self._order) + self._pending() >= self.limit:
                victim = self._victim()
                if victim is None:
                    self._cond.wait(1.0)
                    continue
                self._order.pop(victim)
                self._events.discard(victim)
                self._pool.discard(victim)
            self._busy[key] = self._busy.get(key, 0) + 1

    def _pending(self) -> int:
        """Borrowed keys whose connection is not open yet (being opened)."""
        return sum(1 for k in self._busy if k not in self._order)

    def _victim(self) -> str | None:
        idle = [k for k in self._order if k not in self._busy]
        quiet = [k for k in idle if k not in self._events]
        pick = quiet or idle
        return pick[0] if pick else None


__all__ = ["BoundedConnections"]
