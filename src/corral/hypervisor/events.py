"""libvirt's event loop, run once per process in a daemon thread.

It must be running before the connections that want lifecycle events are
opened; ``ensure_event_loop`` is idempotent and cheap to call again.
"""

from __future__ import annotations

import threading

import libvirt

_started = False
_lock = threading.Lock()


def ensure_event_loop() -> None:
    global _started
    with _lock:
        if _started:
            return
        libvirt.virEventRegisterDefaultImpl()

        def run() -> None:
            while True:
                libvirt.virEventRunDefaultImpl()

        threading.Thread(target=run, name="libvirt-events", daemon=True).start()
        _started = True
