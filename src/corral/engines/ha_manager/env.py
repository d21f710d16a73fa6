"""What the HA manager needs from the world, as one narrow interface.

The manager never talks to libvirt, a clock or a fence agent directly: it asks an
:class:`Environment`. The live environment (libvirt keepalive probes, a storage
heartbeat, fence-agent plugins, libvirt starts, the inventory) and the simulated
one (:mod:`corral.engines.ha_manager.sim`) implement the same methods, so one
manager serves both. Fencing and starting are asynchronous: ``begin``, then poll.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from corral.engines.planning.model import Fleet


@dataclass(frozen=True)
class Probe:
    """One check of a host: does it answer the manager, and is its storage heartbeat fresh?

    ``heartbeat`` alive while ``reachable`` is not means the host is only isolated
    from the manager: it still runs its VMs and must not be fenced.
    """

    reachable: bool
    heartbeat: bool


class FenceStatus(enum.StrEnum):
    pending = "pending"
    fenced = "fenced"
    already_off = "already_off"
    failed = "failed"


class VMStatus(enum.StrEnum):
    stopped = "stopped"
    starting = "starting"
    #: Running and ready (its readiness condition holds).
    running = "running"
    failed = "failed"


class Environment(Protocol):
    def now(self) -> float:
        """Seconds on the manager's clock."""

    def probe(self, host: str) -> Probe:
        """Check ``host`` once (management connection and storage heartbeat)."""

    def fence_begin(self, host: str, method: str) -> None:
        """Start fencing ``host`` with ``method``; replaces any fence of it in flight."""

    def fence_poll(self, host: str) -> FenceStatus:
        """How the last fence of ``host`` stands."""

    def start_vm(self, vm: str, host: str) -> None:
        """Start ``vm`` on ``host`` (its disk is on shared storage)."""

    def vm_status(self, vm: str, host: str) -> VMStatus:
        """How ``vm`` stands on ``host``."""

    def remove_definition(self, vm: str, host: str) -> bool | None:
        """Undefine ``vm`` on ``host`` unless it runs there (a stale copy after its recovery
        elsewhere): True removed, False nothing to remove, None the host did not answer."""

    def fleet(self) -> Fleet:
        """Hosts and where VMs run now (for capacity when re-placing)."""
