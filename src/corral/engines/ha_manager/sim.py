"""A simulated world for the HA manager: hosts, network, storage, fence agents, VM starts.

Deterministic: time moves only when the runner says so. The simulation knows the
truth the manager can only probe (is the host powered? are its VMs still
running?) and records every breach of the manager's promises as a violation:
a VM started while it runs elsewhere, a VM started before its old host was
proven off, a receiver pushed over its capacity.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from corral.engines.ha_manager.env import FenceStatus, Probe, VMStatus
from corral.engines.ha_manager.evacuation_run import MigrationPoll, MigrationState
from corral.engines.planning.model import VM, Fleet, PowerState
from corral.engines.planning.state import EPS, capacity_of, demand_of


@dataclass
class SimHost:
    powered: bool = True
    network: bool = True
    storage: bool = True
    #: Outcomes of successive fence calls: ok, fail or hang (then ok for ever).
    fence_script: list[str] = field(default_factory=list)
    fence_delay: float = 5.0
    #: Proven off by a fence (or already off when fenced) since it last ran.
    fenced: bool = False


@dataclass
class SimVM:
    spec: VM
    host: str | None
    status: VMStatus = VMStatus.running
    ready_at: float = 0.0
    failed_on: str | None = None
    #: Where it last ran (the host that must be off before it runs elsewhere).
    last_host: str | None = None
    fail_starts: int = 0
    start_delay: float = 5.0
    #: seconds a live migration of it takes
    migrate_delay: float = 10.0
    #: hosts holding a persistent definition of it
    defined: set[str] = field(default_factory=set)


@dataclass
class _Fence:
    outcome: str
    done_at: float


@dataclass
class _Migration:
    source: str
    target: str
    done_at: float
    #: set when it ended without moving the VM (why)
    failed: str = ""


class SimEnvironment:
    def __init__(self, fleet: Fleet) -> None:
        self.fleet0 = fleet
        self.clock = 0.0
        self.hosts = {h.name: SimHost() for h in fleet.hosts}
        self.vms = {
            v.name: SimVM(
                v, v.host if v.running else None, _initial(v), last_host=v.host,
                defined={v.host} if v.host else set(),
            )
            for v in fleet.vms
        }  # fmt: skip
        self.fences: dict[str, _Fence] = {}
        self.migrations: dict[str, _Migration] = {}
        self.violations: list[str] = []

    # ------------------------------------------------------- the Environment

    def now(self) -> float:
        return self.clock

    def probe(self, host: str) -> Probe:
        h = self.hosts[host]
        return Probe(reachable=h.powered and h.network, heartbeat=h.powered and h.storage)

    def fence_begin(self, host: str, method: str) -> None:
        script = self.hosts[host].fence_script
        outcome = script.pop(0) if script else "ok"
        self.fences[host] = _Fence(outcome, self.clock + self.hosts[host].fence_delay)

    def fence_poll(self, host: str) -> FenceStatus:
        op = self.fences.get(host)
        if op is None or op.outcome == "hang" or self.clock < op.done_at:
            return FenceStatus.pending
        del self.fences[host]
        if op.outcome == "fail":
            return FenceStatus.failed
        h = self.hosts[host]
        h.fenced = True
        if not h.powered:
            return FenceStatus.already_off
        self.power_off(host)
        return FenceStatus.fenced

    def start_vm(self, vm: str, host: str) -> None:
        v = self.vms[vm]
        self._check_safe(vm, v, host)
        h = self.hosts[host]
        if v.fail_starts > 0 or not h.powered or not h.storage:
            v.fail_starts = max(v.fail_starts - 1, 0)
            v.status, v.host, v.failed_on = VMStatus.failed, None, host
            return
        v.status, v.host, v.failed_on = VMStatus.starting, host, None
        v.last_host, v.ready_at = host, self.clock + v.start_delay
        v.defined.add(host)
        h.fenced = False

    def vm_status(self, vm: str, host: str) -> VMStatus:
        v = self.vms[vm]
        if v.failed_on == host:
            return VMStatus.failed
        if v.host != host:
            return VMStatus.stopped
        if v.status is VMStatus.starting and self.clock >= v.ready_at:
            v.status = VMStatus.running
        return v.status

    def remove_definition(self, vm: str, host: str) -> bool | None:
        h, v = self.hosts[host], self.vms[vm]
        if not (h.powered and h.network):
            return None
        if v.host == host or host not in v.defined:
            return False
        v.defined.discard(host)
        return True

    def fleet(self) -> Fleet:
        vms = []
        for v in self.vms.values():
            on = v.host is not None and v.status in (VMStatus.running, VMStatus.starting)
            where = v.host if on else None
            same = v.spec.host == where and v.spec.running == (where is not None)
            vms.append(v.spec if same else _placed(v.spec, where))
        return self.fleet0.with_vms(vms)

    # ------------------------------------------------------------ the world

    def power_off(self, host: str) -> None:
        self.hosts[host].powered = False
        for v in self.vms.values():
            if v.host == host:
                v.host, v.status = None, VMStatus.stopped
        for mig in self.migrations.values():
            if not mig.failed and host == mig.source:
                mig.failed = "source host lost mid-migration"
            elif not mig.failed and host == mig.target:
                mig.failed = "target host lost mid-migration: the VM resumed on its host"

    def migrate(self, vm: str, source: str, target: str) -> None:
        """A live migration: the VM runs on ``target`` without stopping (if it ran on
        ``source``), its definition moves with it; only the operator's maintenance does
        this, never the manager."""
        v = self.vms[vm]
        if v.host == source and self.hosts[target].powered:
            v.host, v.last_host = target, target
            v.defined = (v.defined - {source}) | {target}

    def autostart(self, host: str) -> None:
        """The host starts every VM it holds a definition of (libvirt autostart, or an
        operator's 'start all'): a stale copy of a VM running elsewhere is a violation."""
        if not self.hosts[host].powered:
            return
        for name, v in sorted(self.vms.items()):
            if host in v.defined and v.host != host:
                if v.host is not None:
                    t = f"t={self.clock:g}"
                    self.violations.append(
                        f"{t} {name} started on {host} while it runs on {v.host}"
                    )
                    continue
                v.host, v.status, v.last_host = host, VMStatus.running, host

    # --------------------------------------- live migrations (maintenance runs)

    def migration_begin(self, vm: str, source: str, target: str) -> None:
        v = self.vms[vm]
        mig = _Migration(source, target, self.clock + v.migrate_delay)
        if v.host != source:
            mig.failed = f"not running on {source}"
        elif not (self.hosts[target].powered and self.hosts[target].network):
            mig.failed = f"cannot reach {target}"
        self.migrations[vm] = mig

    def migration_poll(self, vm: str) -> MigrationPoll:
        mig = self.migrations[vm]
        if mig.failed:
            del self.migrations[vm]
            return MigrationPoll(MigrationState.failed, mig.failed)
        if self.clock < mig.done_at:
            return MigrationPoll(MigrationState.pending)
        del self.migrations[vm]
        self.migrate(vm, mig.source, mig.target)
        return MigrationPoll(MigrationState.done)

    def migration_cancel(self, vm: str) -> None:
        mig = self.migrations.get(vm)
        if mig is not None and not mig.failed and self.clock < mig.done_at:
            mig.failed = "cancelled: the VM resumed on its host"

    def running_hosts(self, vm: str, hosts: tuple[str, ...]) -> tuple[str, ...]:
        v = self.vms[vm]
        return tuple(h for h in hosts if v.host == h and self.hosts[h].powered)

    def confirm_off(self, host: str) -> None:
        """An operator powers the host off by hand and says so: it counts as fenced."""
        if self.hosts[host].powered:
            self.power_off(host)
        self.hosts[host].fenced = True

    def power_on(self, host: str) -> None:
        """The host boots again; its VMs stay off (libvirt autostart is not used for HA VMs)."""
        self.hosts[host].powered = True

    def add_load(self, name: str, host: str, vcpus: int, memory_mib: int) -> None:
        spec = VM(name=name, vcpus=vcpus, memory_mib=memory_mib, host=host)
        self.vms[name] = SimVM(spec, host, VMStatus.running, last_host=host)

    def running_on(self, host: str) -> list[str]:
        return sorted(n for n, v in self.vms.items() if v.host == host)

    # ------------------------------------------------------- the promises

    def _check_safe(self, vm: str, v: SimVM, host: str) -> None:
        t = f"t={self.clock:g}"
        if v.host is not None:
            self.violations.append(f"{t} {vm} started on {host} while it runs on {v.host}")
            return
        last = v.last_host
        if last is not None and last != host:
            old = self.hosts[last]
            proven_down = old.fenced or (old.powered and old.network)
            if not proven_down:
                self.violations.append(f"{t} {vm} started on {host} before {last} was fenced")
        settings = self.fleet0.settings
        cap = capacity_of(
            self.fleet0.host(host), settings.cpu_allocation_ratio, settings.ram_allocation_ratio
        )
        used = sum(
            (demand_of(x.spec) for x in self.vms.values() if x.host == host), demand_of(v.spec)
        )
        if np.any(used > cap + EPS):
            self.violations.append(f"{t} {vm} started on {host} beyond its capacity")


def _initial(v: VM) -> VMStatus:
    return VMStatus.running if v.running and v.host is not None else VMStatus.stopped


def _placed(spec: VM, host: str | None) -> VM:
    state = PowerState.running if host is not None else PowerState.shutoff
    return replace(spec, host=host, state=state)


class SimMigrations:
    """The simulated world as an evacuation run's :class:`Migrations`."""

    def __init__(self, env: SimEnvironment) -> None:
        self.env = env

    def now(self) -> float:
        return self.env.clock

    def begin(self, vm: str, source: str, target: str) -> None:
        self.env.migration_begin(vm, source, target)

    def poll(self, vm: str) -> MigrationPoll:
        return self.env.migration_poll(vm)

    def cancel(self, vm: str) -> None:
        self.env.migration_cancel(vm)

    def running_on(self, vm: str, hosts: tuple[str, ...]) -> tuple[str, ...]:
        return self.env.running_hosts(vm, hosts)

    def unanswered(self, vm: str) -> tuple[str, ...]:
        return ()  # the simulator knows where each VM runs, even on a host that is off
