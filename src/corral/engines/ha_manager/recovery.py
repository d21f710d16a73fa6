"""Restarting the VMs of fenced hosts: by the plan, in order, a few at a time.

Each round: poll the VMs that are starting, then walk the queued ones in priority
order (higher priority, replicated before restart, larger first) and start those
whose dependencies are settled, on the planned target when it is online, not in
maintenance and still has room, else on the host the placement engine chooses
now. A target takes at most ``max_starts_per_host`` starts at once, and a host
that already failed a VM's start is not tried again for it.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from corral.engines.ha_manager.env import Environment, VMStatus
from corral.engines.ha_manager.state import HostState, VMRecord, VMState
from corral.engines.planning.model import VM, Protection
from corral.engines.planning.placement.filters.anti_affinity import AntiAffinityFilter
from corral.engines.planning.placement.filters.capacity import CapacityFilter
from corral.engines.planning.placement.filters.cores import CoresFilter
from corral.engines.planning.placement.filters.cpu_compat import CpuCompatibilityFilter
from corral.engines.planning.placement.outcome import Placed
from corral.engines.planning.placement.scheduler import Scheduler
from corral.engines.planning.placement.weighers.free_capacity import FreeCapacityWeigher
from corral.engines.planning.state import ClusterState

if TYPE_CHECKING:
    from corral.engines.ha_manager.manager import Manager

#: Hard constraints during failover; affinity and the N+K reserve are not enforced (the
#: reserve is what a failover consumes).
SCHEDULER = Scheduler(
    filters=(CpuCompatibilityFilter(), CoresFilter(), AntiAffinityFilter(), CapacityFilter()),
    weighers=(FreeCapacityWeigher(1.0),),
)
#: Dependency states that let a dependent go: running, or given up (it will not come).
_DEP_DONE = frozenset({VMState.running, VMState.not_recovered, VMState.down_unprotected})


def run(manager: Manager, env: Environment) -> None:
    for name, rec in sorted(manager.state.vms.items()):
        if rec.state is VMState.starting:
            _poll(manager, name, rec, env)
    queued = [n for n, r in manager.state.vms.items() if r.state is VMState.queued]
    if not queued:
        return
    state = _cluster(manager, env)
    busy = Counter(
        r.target for r in manager.state.vms.values() if r.state is VMState.starting and r.target
    )
    order = sorted(queued, key=lambda n: _order(manager.fleet.vm(n)))
    _reserve_planned(manager, order, state)
    for name in order:
        _try_start(manager, name, manager.state.vms[name], state, busy, env)


def _reserve_planned(manager: Manager, order: list[str], state: ClusterState) -> None:
    """Hold room on the planned target of every queued VM whose target is still usable.

    The plan promised these VMs would come back; a VM re-placed this round (not in the
    plan, or its target gone) must not take the room of one that waits for its turn
    (a dependency, the concurrency cap). Each VM gives its hold back when it is tried.
    """
    for name in order:
        rec, vm = manager.state.vms[name], manager.fleet.vm(name)
        planned = manager.plan.get(rec.origin or "", {}).get(name)
        if planned is not None and _unusable(manager, rec, vm, state, planned) is None:
            state.add(vm, state.index[planned])


def host_back(manager: Manager, host: str, env: Environment) -> None:
    """A host that could not be fenced answers again: its VMs that run there are fine;
    those it reports stopped are proven down and are recovered by its plan."""
    for name, rec in sorted(manager.state.vms.items()):
        if rec.origin != host or rec.state is not VMState.stranded:
            continue
        if env.vm_status(name, host) is VMStatus.running:
            rec.state, rec.origin = VMState.running, None
            manager.emit("vm_running", host, name, "still running on its host")
        else:
            rec.state = VMState.queued
            manager.emit("vm_queued", host, name, "proven stopped on its host")


def check_after_outage(manager: Manager, host: str, env: Environment) -> None:
    """A host answers again after a short outage (a quick reboot): the protected VMs it
    no longer runs are proven stopped on a reachable host, so they are recovered."""
    for name, rec in sorted(manager.state.vms.items()):
        if rec.state is not VMState.running or rec.host != host:
            continue
        if env.vm_status(name, host) is VMStatus.running:
            continue
        rec.origin = host
        if manager.fleet.vm(name).protection is Protection.none:
            rec.state = VMState.down_unprotected
            manager.emit("vm_down_unprotected", host, name, "stopped during the outage")
        else:
            rec.state = VMState.queued
            manager.emit("vm_queued", host, name, "stopped during the outage")


def _order(vm: VM) -> tuple[int, int, int, str]:
    return (-vm.priority, vm.protection is not Protection.replicated, -vm.memory_mib, vm.name)


def _poll(manager: Manager, name: str, rec: VMRecord, env: Environment) -> None:
    assert rec.target is not None
    status = env.vm_status(name, rec.target)
    if status is VMStatus.running:
        rec.state, rec.host = VMState.running, rec.target
        manager.emit("vm_recovered", rec.target, name, f"from {rec.origin}")
        old = manager.state.hosts.get(rec.origin or "")
        if old is not None and rec.origin != rec.target and name not in old.stale:
            old.stale.append(name)  # its definition there goes when that host answers
    elif status is VMStatus.failed:
        rec.tried.append(rec.target)
        manager.emit("vm_start_failed", rec.target, name, f"attempt {rec.attempts}")
        if rec.attempts >= manager.config.max_start_attempts:
            _give_up(manager, name, rec, f"{rec.attempts} start attempts failed")
        else:
            rec.state, rec.target = VMState.queued, None


def _try_start(
    manager: Manager,
    name: str,
    rec: VMRecord,
    state: ClusterState,
    busy: Counter[str],
    env: Environment,
) -> None:
    blocker = _blocking_dependency(manager, name)
    if blocker is not None:
        _wait(manager, name, rec, f"dependency {blocker}")
        return  # keeps its hold on the planned target
    vm = manager.fleet.vm(name)
    if name in state.placement:
        state.remove(name)  # its own hold: judge the target without it
    target, how = _target(manager, name, rec, vm, state)
    if target is None and _unsure_receivers(manager, rec):
        _wait(manager, name, rec, f"a receiver may come back ({how})")
        return
    if target is None:
        _give_up(manager, name, rec, how)
        return
    state.add(vm, state.index[target])
    if busy[target] >= manager.config.max_starts_per_host:
        _wait(manager, name, rec, f"concurrency on {target}")
        return
    rec.state, rec.target, rec.waiting = VMState.starting, target, ""
    rec.attempts += 1
    busy[target] += 1
    env.start_vm(name, target)
    manager.emit("vm_start", target, name, how)


def _unsure_receivers(manager: Manager, rec: VMRecord) -> bool:
    """A host that missed a check but is not declared failed may take the VM after all: a
    blip on a receiver at the wrong moment must not leave the VM down for good."""
    return any(
        r.state is HostState.suspect and not r.maintenance and h not in rec.tried
        for h, r in manager.state.hosts.items()
    )


def _suspect(manager: Manager, rec: VMRecord, host: str) -> bool:
    record = manager.state.hosts.get(host)
    return (
        record is not None
        and record.state is HostState.suspect
        and not record.maintenance
        and host not in rec.tried
    )


def _blocking_dependency(manager: Manager, name: str) -> str | None:
    for dep in manager.policy.depends_on.get(name, ()):
        dep_rec = manager.state.vms.get(dep)
        if dep_rec is not None and dep_rec.state not in _DEP_DONE:
            return dep
    return None


def _target(
    manager: Manager, name: str, rec: VMRecord, vm: VM, state: ClusterState
) -> tuple[str | None, str]:
    """The planned target if usable, else the placement engine's choice; (None, why) if none."""
    planned = manager.plan.get(rec.origin or "", {}).get(name)
    if planned is not None:
        problem = _unusable(manager, rec, vm, state, planned)
        if problem is None:
            return planned, "planned"
        if _suspect(manager, rec, planned):
            # One missed check is no failure: the plan's reserved room waits for the host to
            # answer or be declared failed (a grace at most), so a blip on the receiver at the
            # wrong moment does not move the VM onto room other failures were promised.
            return None, f"planned {planned} missed a check"
        why = f"planned {planned} {problem}"
    else:
        why = "not in the plan"
    outcome = SCHEDULER.decide(_receivers(manager, rec, state), vm)
    if isinstance(outcome, Placed):
        return outcome.host, f"re-placed: {why}"
    return None, f"no host can take it ({why})"


def _unusable(
    manager: Manager, rec: VMRecord, vm: VM, state: ClusterState, host: str
) -> str | None:
    record = manager.state.hosts.get(host)
    if record is None or record.state is not HostState.online:
        return "is not online"
    if record.maintenance:
        return "is in maintenance"
    if host in rec.tried:
        return "failed to start it"
    masks = [f.passes(state, vm) for f in SCHEDULER.filters]
    if not all(bool(m[state.index[host]]) for m in masks):
        return "is full"
    return None


def _receivers(manager: Manager, rec: VMRecord, state: ClusterState) -> ClusterState:
    """``state`` with every host that may not receive this VM disabled (shares the usage)."""
    view = state.copy()
    for host, i in state.index.items():
        record = manager.state.hosts.get(host)
        view.disabled[i] = (
            record is None
            or record.state is not HostState.online
            or record.maintenance
            or host in rec.tried
        )
    return view


def _cluster(manager: Manager, env: Environment) -> ClusterState:
    """Usage now, with the VMs this manager is starting counted on their targets."""
    state = ClusterState.from_fleet(env.fleet())
    for name, rec in sorted(manager.state.vms.items()):
        if rec.state is not VMState.starting or rec.target is None:
            continue
        if state.placement.get(name) != state.index[rec.target]:
            if name in state.placement:
                state.remove(name)
            state.add(manager.fleet.vm(name), state.index[rec.target])
    return state


def _wait(manager: Manager, name: str, rec: VMRecord, why: str) -> None:
    if rec.waiting != why:
        rec.waiting = why
        manager.emit("vm_waiting", rec.origin, name, why)


def _give_up(manager: Manager, name: str, rec: VMRecord, why: str) -> None:
    rec.state, rec.target, rec.waiting = VMState.not_recovered, None, ""
    manager.emit("vm_not_recovered", rec.origin, name, why)
