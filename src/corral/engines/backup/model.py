"""The backup planner's inputs: VMs with their disks and change rates, hosts and datastores with
their backup I/O budgets. Plain data, built from a fleet file, the live inventory or a test."""

from __future__ import annotations

from dataclasses import dataclass

from corral.engines.backup.policy import Window


@dataclass(frozen=True, slots=True)
class BackupVM:
    """One VM to protect. ``change_gib_per_day`` None: the policy's default share of its size."""

    name: str
    host: str
    datastore: str
    size_gib: float
    tier: str | None = None
    change_gib_per_day: float | None = None


@dataclass(frozen=True, slots=True)
class IOBudget:
    """Backup bandwidth a host or datastore can give, in MiB/s: ``mib_s`` at any hour, except
    within each window of ``windows`` (e.g. more at night, nothing in business hours)."""

    name: str
    mib_s: int
    windows: tuple[tuple[Window, int], ...] = ()

    def at(self, minute: int) -> int:
        for window, mib_s in self.windows:
            if window.contains(minute):
                return mib_s
        return self.mib_s


@dataclass(frozen=True, slots=True)
class BackupInputs:
    vms: tuple[BackupVM, ...]
    hosts: tuple[IOBudget, ...] = ()  # a host not listed gets the policy's default budget
    datastores: tuple[IOBudget, ...] = ()
