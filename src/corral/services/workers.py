"""Who works on a claimed row (a request being provisioned, a unit being operated): this
machine and process, and whether a process named so still runs."""

from __future__ import annotations

import os
import socket


def this_worker() -> str:
    """Who is working: this machine and process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def alive(worker: str) -> bool:
    """Whether the process ``host:pid`` still runs (only this machine's can be told)."""
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


__all__ = ["alive", "this_worker"]
