"""``corral ha heartbeat HOST``: the storage heartbeat a host writes for the HA manager.

The manager checks each host two ways: its libvirt daemon answers (keepalive and a round
trip), and the host's heartbeat file ``<heartbeat_dir>/<HOST>`` on storage the VMs share is
fresh. A host whose daemon is silent but whose heartbeat goes on is only cut off from the
manager: its VMs still run and still reach their disks, so it is *isolated*, never fenced
and never recovered from. This writer runs on each host (as a system service beside
libvirtd). It writes the time into a temporary file, flushes it to the storage and renames
it over the heartbeat, so the manager never reads half a beat, and a beat only counts once
the storage has taken it: a host that lost its storage stops beating.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from corral.errors import ConfigError, ValidationError

log = logging.getLogger(__name__)


class HeartbeatWriter:
    def __init__(
        self,
        directory: Path,
        host: str,
        interval_s: float,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not host or host in (".", "..") or "/" in host or "\0" in host:
            raise ValidationError(f"Host name {host!r} cannot name a heartbeat file.")
        if not directory.is_dir():
            raise ConfigError(f"Heartbeat folder {directory} does not exist; create it first.")
        if interval_s <= 0:
            raise ValidationError("The heartbeat interval must be more than 0 seconds.")
        self.path = directory / host
        self.interval_s = interval_s
        self.clock, self.sleep = clock, sleep

    def beat(self) -> None:
        """One beat: the time, flushed to storage, then renamed over the heartbeat file."""
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, f"{self.clock():.3f}\n".encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)

    def run(self, beats: int | None = None) -> None:
        """Beat every ``interval_s`` (``beats`` times, or until stopped). A beat the storage
        refuses is logged and tried again: the manager sees the heartbeat age meanwhile."""
        done = 0
        while beats is None or done < beats:
            try:
                self.beat()
            except OSError as exc:
                log.warning("heartbeat %s not written: %s", self.path, exc)
            done += 1
            if beats is None or done < beats:
                self.sleep(self.interval_s)
