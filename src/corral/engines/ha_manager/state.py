"""The manager's state as plain data: one record per host and per protected VM.

Everything the manager knows between two rounds lives here, and round-trips
through :meth:`ManagerState.to_dict` / :meth:`ManagerState.from_dict`, so a
manager that dies mid-recovery is replaced by one that resumes from the saved
state (the simulator does exactly that; the live service keeps it in the database).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any


class HostState(enum.StrEnum):
    online = "online"
    #: Missed a check; not yet declared failed (grace period and repeated checks).
    suspect = "suspect"
    #: Unreachable from the manager but its storage heartbeat is alive: keeps its VMs.
    isolated = "isolated"
    fencing = "fencing"
    #: Proven off; its protected VMs are being restarted elsewhere.
    fenced = "fenced"
    #: Every recovery of its VMs is settled.
    recovered = "recovered"
    #: Every fence method failed: its VMs are not recovered (an alert, not a guess).
    unfenceable = "unfenceable"


class VMState(enum.StrEnum):
    running = "running"
    #: Its host failed; waits until the host is proven off.
    awaiting_fence = "awaiting_fence"
    #: May start once its turn comes (priority, dependencies, concurrency).
    queued = "queued"
    starting = "starting"
    #: No host could take it, or every start attempt failed.
    not_recovered = "not_recovered"
    #: Protection "none": stays down with its host, reported.
    down_unprotected = "down_unprotected"
    #: Its host could not be fenced: may still run there, so it is left alone.
    stranded = "stranded"


#: VM states that end a recovery.
SETTLED = frozenset({VMState.running, VMState.not_recovered, VMState.down_unprotected})


@dataclass(frozen=True)
class ManagerConfig:
    """Timing and limits; every field has a default (docs/ha-manager.md explains each)."""

    check_interval_s: float = 5.0
    #: A host is declared failed only after this long without an answer ...
    grace_s: float = 30.0
    #: ... and at least this many failed checks in a row.
    checks: int = 3
    fence_timeout_s: float = 60.0
    #: Attempts per fence method before the next method is tried.
    fence_attempts: int = 2
    max_starts_per_host: int = 2
    max_start_attempts: int = 3
    #: Suspect-then-back this many times within the window raises host_flapping.
    flap_count: int = 3
    flap_window_s: float = 300.0
    #: More than this share of hosts unreachable at once: the manager is likely cut off
    #: itself, so it fences nobody (no fencing storm on a network blip).
    hold_fraction: float = 0.5

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> ManagerConfig:
        known = {f.name: f.type for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(f"unknown HA setting(s): {', '.join(unknown)}")
        values: dict[str, Any] = {
            k: (int(v) if known[k] == "int" else float(v)) for k, v in data.items()
        }
        return cls(**values)


@dataclass(frozen=True)
class Policy:
    """What the operator states about recovery beyond the fleet: order and fencing."""

    #: VM -> VMs that must be running (ready) before it starts (a database before its app).
    depends_on: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: Host -> fence methods tried in order (plugin names); default ``power``.
    fence_methods: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def methods(self, host: str) -> tuple[str, ...]:
        return self.fence_methods.get(host) or ("power",)


@dataclass
class HostRecord:
    state: HostState = HostState.online
    maintenance: bool = False
    failed_checks: int = 0
    first_failure: float | None = None
    fence_method: int = 0
    fence_attempt: int = 0
    fence_started: float | None = None
    flaps: list[float] = field(default_factory=list)
    flap_alerted: bool = False
    #: VMs recovered elsewhere whose definition this host may still hold: removed as soon
    #: as it answers again, so the old copy can never be started a second time
    stale: list[str] = field(default_factory=list)


@dataclass
class VMRecord:
    #: Where it runs (or last ran).
    host: str
    state: VMState = VMState.running
    #: The failed host it is being recovered from.
    origin: str | None = None
    target: str | None = None
    attempts: int = 0
    tried: list[str] = field(default_factory=list)
    #: Why it last waited (logged once per change).
    waiting: str = ""


@dataclass
class ManagerState:
    hosts: dict[str, HostRecord]
    vms: dict[str, VMRecord]
    fencing_held: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "hosts": {k: asdict(v) for k, v in self.hosts.items()},
            "vms": {k: asdict(v) for k, v in self.vms.items()},
            "fencing_held": self.fencing_held,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ManagerState:
        hosts = {
            k: HostRecord(**{**v, "state": HostState(v["state"])}) for k, v in data["hosts"].items()
        }
        vms = {k: VMRecord(**{**v, "state": VMState(v["state"])}) for k, v in data["vms"].items()}
        return cls(hosts, vms, bool(data.get("fencing_held", False)))
