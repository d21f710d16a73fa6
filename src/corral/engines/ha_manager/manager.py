"""The HA manager: one deterministic round (:meth:`Manager.tick`) after another.

Per round: check every host, move fences along, then let :mod:`.recovery` start
the VMs of fenced hosts. A host goes online -> suspect -> (isolated | fencing) ->
fenced -> recovered, or -> unfenceable when no fence method works. Every
transition is an :class:`~.events.Event`. All decisions are made here; the
:class:`~.env.Environment` only observes and acts.
"""

from __future__ import annotations

from collections.abc import Mapping

from corral.engines.ha_manager import recovery
from corral.engines.ha_manager.env import Environment, FenceStatus, Probe
from corral.engines.ha_manager.events import Event
from corral.engines.ha_manager.plan import FailoverPlan
from corral.engines.ha_manager.state import (
    SETTLED,
    HostRecord,
    HostState,
    ManagerConfig,
    ManagerState,
    Policy,
    VMRecord,
    VMState,
)
from corral.engines.planning.model import Fleet, Protection

#: Host states whose hosts are checked each round.
_PROBED = frozenset(
    {
        HostState.online,
        HostState.suspect,
        HostState.isolated,
        HostState.fenced,
        HostState.recovered,
        HostState.unfenceable,
    }
)


class Manager:
    def __init__(
        self,
        fleet: Fleet,
        plan: FailoverPlan,
        config: ManagerConfig | None = None,
        policy: Policy | None = None,
        state: ManagerState | None = None,
    ) -> None:
        self.fleet = fleet
        self.plan = plan
        self.config = config or ManagerConfig()
        self.policy = policy or Policy()
        self.state = state or initial_state(fleet)
        self.events: list[Event] = []
        self.now = 0.0

    @classmethod
    def resume(
        cls,
        fleet: Fleet,
        plan: FailoverPlan,
        saved: Mapping[str, object],
        config: ManagerConfig | None = None,
        policy: Policy | None = None,
    ) -> Manager:
        """A new manager from a dead one's saved state.

        A fence that was in flight died with the old process: it is begun again
        (fencing is idempotent, an off host answers "already off"). VMs that were
        starting are polled, never started twice.
        """
        manager = cls(fleet, plan, config, policy, ManagerState.from_dict(saved))
        for rec in manager.state.hosts.values():
            if rec.state is HostState.fencing:
                rec.fence_started = None
        return manager

    # ------------------------------------------------------------------ rounds

    def tick(self, env: Environment) -> list[Event]:
        """One round; returns the events it produced."""
        self.events = []
        self.now = env.now()
        probes = {
            name: env.probe(name)
            for name, rec in sorted(self.state.hosts.items())
            if rec.state in _PROBED and self._watched(name, rec)
        }
        self._update_hold(probes)
        for name, probe in probes.items():
            self._observe(name, self.state.hosts[name], probe, env)
        for name, rec in sorted(self.state.hosts.items()):
            if rec.state is HostState.fencing:
                self._fence_step(name, rec, env)
        recovery.run(self, env)
        self._settle_hosts()
        self._remove_stale(probes, env)
        return self.events

    def _remove_stale(self, probes: Mapping[str, Probe], env: Environment) -> None:
        """A host the manager recovered VMs from answers again: the definitions it still
        holds of them go, before anyone (autostart, an operator) can start a second copy."""
        for name, rec in sorted(self.state.hosts.items()):
            probe = probes.get(name)
            if not rec.stale or probe is None or not probe.reachable:
                continue
            if rec.state is not HostState.online:
                continue
            for vm in list(rec.stale):
                vm_rec = self.state.vms.get(vm)
                if vm_rec is not None and vm_rec.host == name:
                    rec.stale.remove(vm)  # it runs here again (moved back): not stale
                    continue
                removed = env.remove_definition(vm, name)
                if removed is None:
                    continue  # ask again next round
                rec.stale.remove(vm)
                if removed:
                    self.emit("vm_stale_removed", name, vm, "old definition undefined")

    def _watched(self, name: str, rec: HostRecord) -> bool:
        """A host in maintenance is not checked once no protected VM runs on it (it was
        evacuated: its daemon may be stopped for the work, and nothing is lost with it);
        one that still runs a protected VM is watched and, if it fails, fenced as any."""
        if not rec.maintenance:
            return True
        return any(v.host == name and v.state is VMState.running for v in self.state.vms.values())

    def emit(
        self, kind: str, host: str | None = None, vm: str | None = None, detail: str = ""
    ) -> None:
        self.events.append(Event(self.now, kind, host, vm, detail))

    # -------------------------------------------------------------- commands

    def set_maintenance(self, host: str, on: bool, now: float) -> list[Event]:
        """Mark ``host`` in (or out of) maintenance: it never receives a recovered VM, and
        once evacuated it is no longer checked (see :meth:`_watched`)."""
        self.events, self.now = [], now
        rec = self.state.hosts[host]
        if rec.maintenance != on:
            rec.maintenance = on
            self.emit("host_maintenance_enter" if on else "host_maintenance_exit", host)
        return self.events

    def vm_moved(self, vm: str, source: str, target: str, now: float) -> list[Event]:
        """``vm`` was live-migrated from ``source`` to ``target`` (maintenance): it runs
        there now. Only a VM still recorded on ``source`` moves, so a move told again (each
        round, or to a new leader) never undoes a later recovery elsewhere."""
        self.events, self.now = [], now
        rec = self.state.vms.get(vm)
        if rec is not None and rec.state is VMState.running and rec.host == source != target:
            self.emit("vm_migrated", target, vm, f"from {source}")
            rec.host = target
        return self.events

    def confirm_off(self, host: str, now: float) -> list[Event]:
        """An operator confirms ``host`` is powered off (manual fencing): recovery may go on."""
        self.events, self.now = [], now
        rec = self.state.hosts[host]
        if rec.state in (HostState.unfenceable, HostState.fencing):
            self._fenced(host, rec, "confirmed off by an operator")
        return self.events

    # ------------------------------------------------------------ detection

    def _update_hold(self, probes: Mapping[str, Probe]) -> None:
        down = sum(1 for p in probes.values() if not p.reachable)
        held = len(probes) >= 3 and down > self.config.hold_fraction * len(probes)
        if held != self.state.fencing_held:
            self.state.fencing_held = held
            if held:
                self.emit("fencing_held", detail=f"{down} of {len(probes)} hosts unreachable")
            else:
                self.emit("fencing_resumed")

    def _observe(self, name: str, rec: HostRecord, probe: Probe, env: Environment) -> None:
        if probe.reachable:
            self._reachable(name, rec, env)
        elif rec.state is HostState.online:
            rec.state, rec.failed_checks, rec.first_failure = HostState.suspect, 1, self.now
            self.emit("host_suspect", name, detail="check failed")
        elif rec.state is HostState.suspect:
            rec.failed_checks += 1
            self._maybe_failed(name, rec, probe, env)
        elif rec.state is HostState.isolated and not probe.heartbeat:
            self._failed(name, rec, env, "storage heartbeat lost while isolated")

    def _maybe_failed(self, name: str, rec: HostRecord, probe: Probe, env: Environment) -> None:
        assert rec.first_failure is not None
        waited = self.now - rec.first_failure
        if rec.failed_checks < self.config.checks or waited < self.config.grace_s:
            return
        if probe.heartbeat:
            rec.state = HostState.isolated
            self.emit("host_isolated", name, detail="storage heartbeat alive: VMs stay")
        elif not self.state.fencing_held:
            self._failed(name, rec, env, f"{rec.failed_checks} failed checks over {waited:g} s")

    def _reachable(self, name: str, rec: HostRecord, env: Environment) -> None:
        state = rec.state
        rec.failed_checks, rec.first_failure = 0, None
        if state is HostState.suspect:
            rec.state = HostState.online
            self.emit("host_online", name, detail="answered again")
            self._count_flap(name, rec)
            recovery.check_after_outage(self, name, env)
        elif state is HostState.isolated:
            rec.state = HostState.online
            self.emit("host_online", name, detail="reachable again")
        elif state in (HostState.recovered, HostState.fenced, HostState.unfenceable):
            rec.state = HostState.online
            self.emit("host_back", name, detail=f"was {state.value}")
            if state is HostState.unfenceable:
                recovery.host_back(self, name, env)

    def _count_flap(self, name: str, rec: HostRecord) -> None:
        window = self.now - self.config.flap_window_s
        rec.flaps = [t for t in rec.flaps if t > window] + [self.now]
        if len(rec.flaps) >= self.config.flap_count and not rec.flap_alerted:
            rec.flap_alerted = True
            self.emit("host_flapping", name, detail=f"{len(rec.flaps)} losses in the window")

    # -------------------------------------------------------------- fencing

    def _failed(self, name: str, rec: HostRecord, env: Environment, why: str) -> None:
        rec.state, rec.fence_method, rec.fence_attempt = HostState.fencing, 0, 0
        self.emit("host_failed", name, detail=why)
        for vm_name, vm in sorted(self.state.vms.items()):
            on_host = vm.state is VMState.running and vm.host == name
            landing = vm.state is VMState.starting and vm.target == name
            if not (on_host or landing):
                continue
            vm.host, vm.origin, vm.target, vm.waiting = name, name, None, ""
            if self._protection(vm_name) is Protection.none:
                vm.state = VMState.down_unprotected
                self.emit("vm_down_unprotected", name, vm_name, "not protected: stays down")
            else:
                vm.state = VMState.awaiting_fence
                self.emit("vm_awaiting_fence", name, vm_name)
        self._fence_begin(name, rec, env)

    def _fence_begin(self, name: str, rec: HostRecord, env: Environment) -> None:
        method = self.policy.methods(name)[rec.fence_method]
        rec.fence_attempt += 1
        rec.fence_started = self.now
        env.fence_begin(name, method)
        self.emit("fence_begin", name, detail=f"{method} attempt {rec.fence_attempt}")

    def _fence_step(self, name: str, rec: HostRecord, env: Environment) -> None:
        if rec.fence_started is None:  # resumed: the fence in flight died with the old manager
            rec.fence_attempt = max(rec.fence_attempt - 1, 0)
            self._fence_begin(name, rec, env)
            return
        status = env.fence_poll(name)
        if status is FenceStatus.fenced:
            self._fenced(name, rec, "powered off")
        elif status is FenceStatus.already_off:
            self._fenced(name, rec, "already off")
        elif status is FenceStatus.failed:
            self.emit("fence_failed", name, detail=self.policy.methods(name)[rec.fence_method])
            self._next_fence(name, rec, env)
        elif self.now - rec.fence_started >= self.config.fence_timeout_s:
            self.emit("fence_timeout", name, detail=self.policy.methods(name)[rec.fence_method])
            self._next_fence(name, rec, env)

    def _next_fence(self, name: str, rec: HostRecord, env: Environment) -> None:
        if rec.fence_attempt >= self.config.fence_attempts:
            rec.fence_method, rec.fence_attempt = rec.fence_method + 1, 0
        if rec.fence_method >= len(self.policy.methods(name)):
            self._unfenceable(name, rec)
            return
        self._fence_begin(name, rec, env)

    def _unfenceable(self, name: str, rec: HostRecord) -> None:
        rec.state, rec.fence_started = HostState.unfenceable, None
        self.emit("host_unfenceable", name, detail="every fence method failed: VMs not recovered")
        for vm_name, vm in sorted(self.state.vms.items()):
            if vm.origin == name and vm.state is VMState.awaiting_fence:
                vm.state = VMState.stranded
                self.emit("vm_stranded", name, vm_name, "host not proven off")

    def _fenced(self, name: str, rec: HostRecord, how: str) -> None:
        rec.state, rec.fence_started = HostState.fenced, None
        self.emit("host_fenced", name, detail=how)
        for vm_name, vm in sorted(self.state.vms.items()):
            if vm.origin == name and vm.state in (VMState.awaiting_fence, VMState.stranded):
                vm.state = VMState.queued
                planned = self.plan.get(name, {}).get(vm_name)
                self.emit("vm_queued", name, vm_name, f"plan: {planned or 'none'}")

    def _settle_hosts(self) -> None:
        for name, rec in sorted(self.state.hosts.items()):
            if rec.state is not HostState.fenced:
                continue
            mine = [v for v in self.state.vms.values() if v.origin == name]
            if all(v.state in SETTLED for v in mine):
                rec.state = HostState.recovered
                back = sum(1 for v in mine if v.state is VMState.running)
                self.emit("host_recovered", name, detail=f"{back} of {len(mine)} VMs running")
                for v in mine:
                    v.origin = None

    def _protection(self, vm: str) -> Protection:
        return self.fleet.vm(vm).protection


def initial_state(fleet: Fleet) -> ManagerState:
    """Every host online; every running VM on its host."""
    hosts = {h.name: HostRecord() for h in fleet.hosts}
    vms = {v.name: VMRecord(host=v.host) for v in fleet.vms if v.running and v.host is not None}
    return ManagerState(hosts, vms)
