"""The narrow interfaces metrics code talks through: where readings come from."""

from __future__ import annotations

from typing import Protocol

from corral.metrics.model import HostSample


class StatsSource(Protocol):
    """Anything that can read one host's raw counters now: libvirt, or a trace replay."""

    def hosts(self) -> list[str]: ...

    def read(self, host: str) -> HostSample: ...
