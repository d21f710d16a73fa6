"""Long-lived hypervisor connections, one per host, reused across syncs.

Opening a connection is the expensive part of a sync (a libvirt test-driver
host with 500 domains takes ~0.5 s to open; a remote host costs a TLS or SSH
handshake). A test-driver host *is* its node file, so its connection is
reused only while the file is unchanged.

A connection to a host that stopped answering may still be in use by a call
that never returns (see corral.hypervisor.deadline): such a connection is
forgotten, never closed from here, since closing it would wait for that call.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from corral.hypervisor.base import Hypervisor
from corral.hypervisor.uri import is_test_file_uri, test_file_path


def _stamp(uri: str) -> tuple[int, int] | None:
    if not is_test_file_uri(uri):
        return None
    try:
        st = Path(test_file_path(uri)).stat()
    except OSError:
        return (-1, -1)
    return (st.st_mtime_ns, st.st_size)


class ConnectionPool:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._conns: dict[str, tuple[Hypervisor, tuple[int, int] | None]] = {}

    def get(self, key: str, uri: str, opener: Callable[[], Hypervisor]) -> Hypervisor:
        """A live connection for ``key``: the cached one when still valid, else a new one."""
        with self._lock:
            cached = self._conns.get(key)
        if cached is not None:
            hv, stamp = cached
            if hv.uri == uri and hv.is_alive() and stamp == _stamp(uri):
                return hv
            self.discard(key)
        hv = opener()
        with self._lock:
            self._conns[key] = (hv, _stamp(uri))
        return hv

    def touched(self, key: str) -> None:
        """Corral itself wrote the host's node file: the cached connection is still the truth."""
        with self._lock:
            cached = self._conns.get(key)
            if cached is not None:
                self._conns[key] = (cached[0], _stamp(cached[0].uri))

    def discard(self, key: str) -> None:
        """Drop and close the connection; the close runs aside, so a stuck host never blocks."""
        with self._lock:
            cached = self._conns.pop(key, None)
        if cached is not None:
            threading.Thread(target=cached[0].close, name=f"close:{key}", daemon=True).start()

    def forget(self, key: str) -> None:
        """Drop the connection without closing it: a call that never returned still holds it."""
        with self._lock:
            self._conns.pop(key, None)

    def close_all(self) -> None:
        with self._lock:
            conns = list(self._conns.values())
            self._conns.clear()
        for hv, _ in conns:
            hv.close()
